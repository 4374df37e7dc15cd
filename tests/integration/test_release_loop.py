"""The wipe gate runs in its own `release` loop (issue 18), not inside the upload loop: with
`release_after = "spooled"` a recorder is released while the archive store is unreachable and
the upload loop backs off."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from agent.daemon.main import Daemon
from fixtures.seaweed import s3_config
from fixtures.station import ledger_rows


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_release_goes_on_while_the_store_is_down(make_station, bodycam, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    endpoint = f"http://127.0.0.1:{_closed_port()}"  # nothing listens: every upload fails
    st = make_station(
        'release_after = "spooled"\n' + s3_config(endpoint, "nobucket", tmp_path / "creds")
    )
    daemon = Daemon(st.context())
    names = set()
    daemon.start()
    try:
        names = {t.name for t in daemon.threads}
        _, clips = bodycam(out=st.mount_root / "ZFY0601", serial="ZFY0601", clips=2, seconds=1.0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(c.exists() for c in clips):
            time.sleep(0.2)
        states = [r["state"] for r in ledger_rows(st, "SELECT state FROM recordings")]
    finally:
        daemon.shutdown()
    assert {"archive", "archive-maintain", "release"} <= names
    assert not any(c.exists() for c in clips), "the wipe gate did not run while uploads failed"
    assert states == ["released", "released"], states
    archived = ledger_rows(st, "SELECT id FROM recordings WHERE archived_at IS NOT NULL")
    assert archived == [], "nothing can have been archived: the store is unreachable"
