"""A ledger written by the v0.1.0 baseline upgrades in place with its counters right.

The baseline's own code (the commit in tests/upgrade/baseline, from git) writes a ledger:
recordings in every state, metadata versions with and without a case number, outbox events.
Opening it with this code runs migration 0009; the trigger-kept counters must then equal what
a full count says, and stay equal through further writes by the current code.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

from agent.core.safefs import SourceFile
from agent.ledger import events
from agent.ledger import recordings as rec
from agent.ledger.db import Ledger
from agent.tagging import metadata
from tests.toolcheck import require_tool

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import agent
    assert agent.__file__.startswith(sys.argv[2]), agent.__file__
    from agent import events, metadata, recordings as rec
    from agent.ledger import Ledger
    from agent.volume import SourceFile
    from drivers.base import DeviceIdentity

    ledger = Ledger(Path(sys.argv[1]))
    states = ["discovered", "copying", "spooled", "archived", "released", "failed",
              "quarantined"]
    with ledger.tx() as conn:
        devs = [rec.upsert_device(conn, DeviceIdentity("v", f"S{i}", "devinfo"), None, True,
                                  None) for i in range(3)]
        for i in range(70):
            f = SourceFile(f"DCIM/{i:04d}.MP4".encode(), 1000 + i, 10**18 + i)
            due = {"deadline": "2026-01-01T00:00:00+08:00"}
            rid, _ = rec.discover_file(conn, devs[i % 3], f, due)
            rec.set_state(conn, rid, states[i % 7])  # the baseline (v0.1.0) API
            if i % 3 == 0:
                metadata.add_version(conn, rid, {"case_number": f"C{i}"}, ["case_number"],
                                     actor="t", reason=None, origin="cli")
            if i % 9 == 0:
                metadata.add_version(conn, rid, {"category": "x"}, ["category"],
                                     actor="t", reason="case withdrawn", origin="cli")
            events.emit(conn, "ingest.completed", recording=rid)
        conn.execute("DELETE FROM outbox WHERE seq % 4 = 0")
    """
)


def _baseline(tmp: Path) -> Path:
    git = require_tool("git")
    commit = (ROOT / "tests/upgrade/baseline").read_text().strip()
    data = subprocess.run(
        [git, "-C", str(ROOT), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    out = tmp / "baseline"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(out, filter="data")
    return out


def _counts_agree(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        kept = conn.execute(
            "SELECT device_id, state, n, bytes FROM recording_counts WHERE n != 0"
            " ORDER BY device_id, state"
        ).fetchall()
        full = conn.execute(
            "SELECT device_id, state, COUNT(*), SUM(size) FROM recordings"
            " GROUP BY device_id, state ORDER BY device_id, state"
        ).fetchall()
        assert kept == full
        counters = dict(conn.execute("SELECT name, n FROM ledger_counters").fetchall())
        assert counters["outbox"] == conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        untagged = conn.execute(
            "SELECT COUNT(*) FROM recordings r LEFT JOIN metadata_versions m"
            " ON m.recording_id = r.id AND m.version = r.metadata_version"
            " WHERE json_extract(m.fields, '$.case_number') IS NULL"
        ).fetchone()[0]
        assert counters["untagged"] == untagged
    finally:
        conn.close()


def test_baseline_ledger_upgrades_with_counters_right(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    path = tmp_path / "ledger.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(base)}
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(base)],
        capture_output=True,
        text=True,
        env=env,
        cwd=base,
    )
    assert proc.returncode == 0, proc.stderr
    before = sqlite3.connect(path)
    assert before.execute("PRAGMA user_version").fetchone()[0] < 9
    before.close()

    ledger = Ledger(path)  # migrates
    assert ledger.one("PRAGMA user_version")[0] >= 9  # type: ignore[index]
    _counts_agree(path)

    # Further writes by the current code keep every counter right.
    with ledger.tx() as conn:
        rid, _ = rec.discover_file(conn, 1, SourceFile(b"DCIM/new.MP4", 5, 7), {})
        rec.transition(conn, rid, "spooled", fields={"size": 6})
        metadata.add_version(
            conn, rid, {"case_number": "N1"}, ["case_number"], actor="t", reason=None, origin="cli"
        )
        metadata.add_version(
            conn, rid, {"category": "y"}, ["case_number"], actor="t", reason="r", origin="cli"
        )
        events.emit(conn, "deadline.missed", recording=rid)
        conn.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox LIMIT 5)")
        conn.execute("UPDATE recordings SET state = 'archived' WHERE state = 'spooled'")
    ledger.close()
    _counts_agree(path)
    conn = sqlite3.connect(path)
    untagged = conn.execute("SELECT n FROM ledger_counters WHERE name='untagged'").fetchone()[0]
    conn.close()
    assert untagged > 0
