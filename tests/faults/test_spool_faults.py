"""Faults of the station's own disk: fsync failing (through faultfs's spool pass-through) and
the spool filling up (a real, small tmpfs with spool_reserve_bytes 0, so writes hit ENOSPC)."""

from __future__ import annotations

import errno
import json
import os
import random
import threading
import time

from agent.ledger.paths import write_marker
from faults.harness import Recorder, check_invariants
from fixtures.station import ledger_rows, wait_for


def _assert_final(st, recs):
    problems = check_invariants(st.config_path, recs, final=True, release_after="never")
    assert not problems, "\n".join(problems)


def _spool_station(make_station, spool, extra=""):
    return make_station(f'release_after = "never"\nspool_dir = "{spool}"\n{extra}')


def test_failed_fsync_is_never_retried_the_copy_is_redone(make_station, faultfs, tmp_path):
    spool = tmp_path / "spool"
    (tmp_path / "spool-disk").mkdir()
    # A spool disk in use carries its root marker; the fault is for the copy, not for that.
    write_marker(tmp_path / "spool-disk", "test-station", "spool")
    fm = faultfs(
        tmp_path / "spool-disk", spool, kind="spool", fsync_eio=[{"path": "*", "times": 1}]
    )
    st = _spool_station(make_station, spool)
    rec = Recorder(tmp_path / "REC", "FSY0001")
    rec.record(random.Random(3), 3, lo=200_000, hi=300_000)

    out = st.cli("ingest", str(rec.volume), "--json")
    assert out.returncode == 1, out.stderr
    (failed,) = json.loads(out.stdout)["failed"]
    assert failed["reason"] == "Input/output error (errno 5)"
    (bad,) = fm.events("fsync_eio")
    ops = [e["fault"] for e in fm.events() if e["path"] == bad["path"]]
    # The file whose fsync failed was thrown away at once: no second fsync "succeeding" on
    # pages the kernel may already have dropped.
    assert ops == ["fsync_eio", "unlink"], ops
    row = ledger_rows(st, "SELECT * FROM recordings WHERE id=?", (failed["id"],))[0]
    assert row["state"] == "failed" and row["sha256"] is None

    out = st.cli("ingest", str(rec.volume), "--json")  # redone from the source
    assert out.returncode == 0, out.stderr
    ops = [e["fault"] for e in fm.events() if e["path"] == bad["path"]]
    assert ops == ["fsync_eio", "unlink", "fsync"], ops
    _assert_final(st, [rec])


def _fill(path, stop):
    """Another writer filling the spool's disk to the last byte."""
    # Unbuffered: a buffered file would fail again at close, flushing what did not fit.
    with open(path, "wb", buffering=0) as fh:
        block = b"\xff" * 65536
        while not stop.is_set():
            try:
                fh.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return


def test_disk_full_mid_copy_then_resume(make_station, small_tmpfs, faultfs, tmp_path):
    spool = small_tmpfs(tmp_path / "spool", 8 << 20)
    st = _spool_station(make_station, spool)
    rec = Recorder(tmp_path / "backing" / "FUL0001", "FUL0001")
    rec.record(random.Random(4), 1, lo=6 << 20, hi=6 << 20)
    rec.record(random.Random(5), 2, lo=100_000, hi=100_000)
    # The recorder is read at USB speed, so the disk fills while the big clip is copied.
    fm = faultfs(rec.volume, tmp_path / "mnt", throttle_bps=15e6)
    stop = threading.Event()
    filler = spool / "filler"

    def fill_when_copying():
        while not stop.is_set():
            if any(p.name.endswith(".partial") for p in (spool / ".tmp").glob("*")):
                return _fill(filler, stop)
            time.sleep(0.002)

    t = threading.Thread(target=fill_when_copying)
    (spool / ".tmp").mkdir(exist_ok=True, mode=0o700)
    t.start()
    try:
        out = st.cli("ingest", str(fm.mountpoint), "--json")
    finally:
        stop.set()
        t.join()
    assert out.returncode == 1
    rows = ledger_rows(st, "SELECT * FROM recordings")
    big = next(r for r in rows if r["size"] == 6 << 20)
    assert big["state"] == "failed" and "No space left on device" in big["reason"]
    # Nothing half-written kept, nothing marked spooled without its copy.
    kept = {
        str(p)
        for p in spool.rglob("*")
        if p.is_file() and p != filler and p.name != ".evidence-agent-root.json"
    }
    assert kept == {str(st.cfg().spool_dir / r["spool_path"]) for r in rows if r["spool_path"]}
    assert check_invariants(st.config_path, [rec], final=False, release_after="never") == []

    filler.unlink()  # space freed: the next run completes
    out = st.cli("ingest", str(fm.mountpoint), "--json")
    assert out.returncode == 0, out.stderr
    _assert_final(st, [rec])


def test_daemon_pauses_on_a_full_spool_and_resumes_when_space_frees(
    make_station, small_tmpfs, daemon, tmp_path
):
    # Room for the four 1 MiB clips and the spool's root marker (one tmpfs page).
    spool = small_tmpfs(tmp_path / "spool", (4 << 20) + (64 << 10))
    st = _spool_station(make_station, spool, "max_parallel = 2")
    recs = []
    for i in range(2):
        rec = Recorder(st.mount_root / f"FUL01{i}", f"FUL010{i}")
        rec.record(random.Random(i), 2, lo=1 << 20, hi=1 << 20)
        recs.append(rec)
    blocker = spool / "blocker"
    blocker.write_bytes(os.urandom(3 << 20))  # leaves ~1 MiB: not enough for the clips
    daemon(st)
    wait_for(
        lambda: ledger_rows(st, "SELECT 1 FROM outbox WHERE type='spool.low'"),
        timeout=30,
        what="spool.low event",
    )
    time.sleep(1.0)
    rows = ledger_rows(st, "SELECT state, reason FROM recordings")
    assert len(rows) == 4
    assert all(r["state"] in ("discovered", "failed", "spooled", "archived") for r in rows)
    assert sum(r["state"] in ("discovered", "failed") for r in rows) >= 2  # not all fit
    assert all(r["reason"] is None or "No space" in r["reason"] for r in rows)

    blocker.unlink()
    wait_for(
        lambda: len(ledger_rows(st, "SELECT 1 FROM recordings WHERE sha256 IS NOT NULL")) == 4,
        timeout=60,
        what="ingest resumed after space was freed",
    )
    _assert_final(st, recs)
