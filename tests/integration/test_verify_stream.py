"""Full `verify` streams: flat memory from 1,500 to 15,000 recordings, progress shown.

Each recording has a real spool copy and the custody event of its copy, written through the
project's own write functions, so verify re-hashes every copy and finds nothing wrong; what
grows with the ledger is only what verify must not keep.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pty
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from agent.actions import verify
from agent.core import clock
from agent.ledger import custody, paths
from agent.ledger import recordings as rec
from agent.recorders.volume import SourceFile
from agent.tagging import metadata
from tests.fixtures.station import ROOT, Station


def _ledger(st: Station, n: int) -> None:
    """n spooled recordings with real copies; every 3rd tagged (metadata is checked too)."""
    ctx = st.context()
    cfg = ctx.cfg
    for name, root in paths.roots(cfg).items():  # a station that has run before
        root.mkdir(parents=True, exist_ok=True)
        paths.write_marker(root, cfg.station.id, name)
    folder = cfg.spool_dir / "t"
    folder.mkdir(parents=True, exist_ok=True)
    conn = ctx.ledger.connect()
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN IMMEDIATE")
    # The device row by hand: it is not under test (and its writer is being reshaped).
    dev = conn.execute(
        "INSERT INTO devices(vendor, serial, serial_source, unit_id, first_seen)"
        " VALUES('t', 'V1', 'devinfo', 'U1', '2026-09-01T00:00:00+00:00')"
    ).lastrowid
    t0 = datetime(2026, 9, 1, tzinfo=UTC)
    for i in range(n):
        data = f"clip {i}\n".encode()
        at = t0 + timedelta(minutes=i)
        f = SourceFile(f"DCIM/{i:08d}.MP4".encode(), len(data), int(at.timestamp() * 1e9))
        fields = {"start": clock.iso(at), "end": clock.iso(at), "deadline": clock.iso(at)}
        rid, _ = rec.discover_file(conn, dev, f, fields)
        (folder / f"{rid}.mp4").write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        rec.transition(conn, rid, "spooled", fields={"sha256": sha, "spool_path": f"t/{rid}.mp4"})
        custody.append(
            conn, "recording.spooled", {"sha256": sha, "size": len(data)}, recording_id=rid
        )
        if i % 3 == 0:
            doc = {"case_number": f"C{i}"}
            metadata.add_version(
                conn, rid, doc, ["case_number"], actor="t", reason=None, origin="cli"
            )
    conn.execute("COMMIT")
    ctx.close()


def _peak(st: Station) -> tuple[int, verify.VerifyReport]:
    ctx = st.context()
    try:
        ctx.ledger.connect()  # opened (and migrated) before measuring
        # Warm up once untraced: lazy imports and caches filled on first use are not rows kept.
        verify.run(ctx, progress=lambda _rid: None)
        gc.collect()
        tracemalloc.start()
        report = verify.run(ctx, progress=lambda _rid: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        ctx.close()
    return peak, report


def test_full_verify_memory_stays_flat_from_1500_to_15000_rows(
    make_station: Callable[..., Station],
) -> None:
    small, big = make_station(name="small"), make_station(name="big")
    _ledger(small, 1500)
    _ledger(big, 15000)
    p_small, r_small = _peak(small)
    p_big, r_big = _peak(big)
    assert r_small.ok and r_big.ok, (r_small.problems[:3], r_big.problems[:3])
    assert (r_small.recordings_checked, r_big.recordings_checked) == (1500, 15000)
    # Ten times the recordings, the same peak within 3 MiB: one batch of rows, one read
    # buffer, and CPython's table of interned path names, which pathlib fills (one 1.8 MiB
    # allocation at 15,000 names, measured) and which stays bounded however many files pass
    # (the same at 600,000 names). A copy of every row kept would add about 20 MiB here.
    assert p_big - p_small < 3 << 20, f"peak {p_small} B at 1,500 rows, {p_big} B at 15,000"


def test_verify_shows_progress_on_a_tty_and_in_the_log(
    make_station: Callable[..., Station],
) -> None:
    st = make_station()
    _ledger(st, 3000)
    # Not a terminal: a log line on stderr; stdout stays the report alone.
    plain = st.cli("verify", check=True)
    assert "verify: 3000 of 3000 copies re-hashed (100%)" in plain.stderr
    assert "copies re-hashed (" not in plain.stdout and "OK" in plain.stdout
    as_json = st.cli("verify", "--json", check=True)
    assert as_json.stdout.lstrip().startswith("{")
    # A terminal on stderr: rich's bar, drawn there and not on stdout.
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(st.config_path), "verify"],
            stdout=subprocess.PIPE,
            stderr=slave,
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
        )
        os.close(slave)
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            drawn += chunk
        out = proc.communicate(timeout=120)[0].decode()
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert b"re-hashing copies" in drawn
    assert "re-hashing" not in out and "OK" in out
