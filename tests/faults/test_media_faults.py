"""Faults of the recorder's medium, injected through faultfs (a real FUSE filesystem):
unplug mid-copy, EIO at byte N, a file changing while read, a file ending early, USB 2.0
speed. Each ends with nothing lost or wrongly marked (the invariants of the kill harness)."""

from __future__ import annotations

import json
import random
import time

from faults.harness import Recorder, check_invariants, sha256_of
from fixtures.station import ledger_rows, wait_for


def _recorder(tmp_path, serial, clips=3, size=256 << 10, seed=1):
    rec = Recorder(tmp_path / "backing" / serial, serial)
    rec.record(random.Random(seed), clips, lo=size, hi=size)
    return rec


def _ingest(st, vol):
    out = st.cli("ingest", str(vol), "--json", "--max-wait", "10")
    return out, (json.loads(out.stdout) if out.stdout.strip() else None)


def _row(st, rel):
    rows = ledger_rows(st, "SELECT * FROM recordings WHERE source_path = ?", (rel,))
    assert len(rows) == 1, rows
    return rows[0]


def _spool_leftovers(st):
    spool = st.data_dir / "spool"
    return [p for p in spool.rglob("*") if p.is_file() and p.name != ".evidence-agent-root.json"]


def _assert_final(st, rec):
    problems = check_invariants(st.config_path, [rec], final=True, release_after="never")
    assert not problems, "\n".join(problems)


def test_unplug_mid_copy_then_redock(make_station, daemon, faultfs, tmp_path):
    st = make_station('release_after = "never"')
    rec = _recorder(tmp_path, "UNP0001", clips=3, size=512 << 10)
    victim = sorted(rec.manifest)[1].decode()
    point = st.mount_root / "UNP0001"
    fm = faultfs(rec.volume, point, throttle_bps=8e6, unplug=[{"path": victim, "at": 300_000}])
    daemon(st)
    wait_for(lambda: fm.events("unplug"), timeout=30, what="unplug mid-copy")
    fm.wait_unmounted()
    wait_for(
        lambda: _row(st, victim)["state"] == "failed",
        timeout=30,
        what="interrupted copy marked failed",
    )
    row = _row(st, victim)
    assert "No such device" in row["reason"] and row["sha256"] is None
    wait_for(
        lambda: ledger_rows(st, "SELECT 1 FROM devices WHERE serial='UNP0001' AND docked=0"),
        what="recorder undocked",
    )
    assert not [p for p in _spool_leftovers(st) if ".partial" in p.name]
    states = {r["source_path"]: r["state"] for r in ledger_rows(st, "SELECT * FROM recordings")}
    assert all(s in ("spooled", "failed", "discovered") for s in states.values())

    faultfs(rec.volume, point)  # docked again, healthy
    wait_for(
        lambda: len(ledger_rows(st, "SELECT 1 FROM recordings WHERE sha256 IS NOT NULL")) == 3,
        timeout=60,
        what="all clips copied after re-dock",
    )
    assert _row(st, victim)["sha256"] == rec.manifest[victim.encode()]
    _assert_final(st, rec)


def test_eio_at_byte_n_is_a_failure_with_reason_until_the_medium_reads(station, faultfs, tmp_path):
    rec = _recorder(tmp_path, "EIO0001")
    victim = sorted(rec.manifest)[1].decode()
    fm = faultfs(rec.volume, tmp_path / "mnt", eio=[{"path": victim, "at": 100_000}])
    for _ in range(2):  # a bad sector stays bad: failed again, never spooled
        out, res = _ingest(station, fm.mountpoint)
        assert out.returncode == 1, out.stderr
        assert [f["reason"] for f in res["failed"]] == ["Input/output error (errno 5)"]
        assert res["copied"] == 0 or res["copied"] == 2
    row = _row(station, victim)
    assert row["state"] == "failed" and row["attempts"] == 2 and row["sha256"] is None
    assert len(fm.events("eio")) == 2
    assert not [p for p in _spool_leftovers(station) if ".partial" in p.name]
    custody = ledger_rows(
        station, "SELECT type FROM custody WHERE recording_id=? ORDER BY seq", (row["id"],)
    )
    assert [c["type"] for c in custody].count("recording.failed") == 2

    fm.set_faults()  # the medium reads again (re-seated card): the copy completes
    out, res = _ingest(station, fm.mountpoint)
    assert out.returncode == 0 and res["failed"] == []
    assert _row(station, victim)["sha256"] == sha256_of(rec.volume / victim)
    _assert_final(station, rec)


def test_file_changing_while_read_is_never_recorded_with_a_mixed_hash(station, faultfs, tmp_path):
    rec = _recorder(tmp_path, "CHG0002")
    victim = sorted(rec.manifest)[0].decode()
    before = rec.manifest[victim.encode()]
    fm = faultfs(rec.volume, tmp_path / "mnt", change=[{"path": victim, "at": 64 << 10}])
    out, res = _ingest(station, fm.mountpoint)
    assert out.returncode == 1
    assert "changed while it was being read" in res["failed"][0]["reason"]
    (change,) = fm.events("change")
    assert change["sha256"] != before
    rec.changed(victim.encode(), change["sha256"])  # what the recorder holds now
    assert _row(station, victim)["state"] == "failed"

    out, res = _ingest(station, fm.mountpoint)  # waits for the file to settle, then copies
    assert out.returncode == 0, out.stderr
    row = _row(station, victim)
    assert row["state"] == "spooled" and row["sha256"] == change["sha256"]
    assert row["sha256"] == sha256_of(rec.volume / victim)
    _assert_final(station, rec)


def test_file_ending_early_is_not_recorded_as_complete(station, faultfs, tmp_path):
    """The medium returns fewer bytes than the directory entry says (a broken FAT chain,
    a flaky card reader): the copy must fail, not be recorded as the whole file."""
    rec = _recorder(tmp_path, "EOF0001")
    victim = sorted(rec.manifest)[2].decode()
    fm = faultfs(rec.volume, tmp_path / "mnt", eof=[{"path": victim, "at": 100_000}])
    out, res = _ingest(station, fm.mountpoint)
    assert out.returncode == 1, out.stdout
    (failed,) = res["failed"]
    assert "read 100000 of 262144 bytes" in failed["reason"]
    row = _row(station, victim)
    assert row["state"] == "failed" and row["sha256"] is None
    fm.set_faults()
    out, res = _ingest(station, fm.mountpoint)
    assert out.returncode == 0
    _assert_final(station, rec)


def test_usb2_throttle_caps_reads_and_ingest_still_completes(station, faultfs, tmp_path):
    rec = _recorder(tmp_path, "USB0002", clips=2, size=6 << 20)
    fm = faultfs(rec.volume, tmp_path / "mnt", throttle_bps=30e6)
    clip = fm.mountpoint / sorted(rec.manifest)[0].decode()
    t0 = time.monotonic()
    with open(clip, "rb") as fh:
        while fh.read(1 << 20):
            pass
    rate = (6 << 20) / (time.monotonic() - t0) / 1e6
    assert 20 < rate < 33, f"{rate:.1f} MB/s through a 30 MB/s bus"
    t0 = time.monotonic()
    out, res = _ingest(station, fm.mountpoint)
    assert out.returncode == 0 and res["copied"] == 2
    assert time.monotonic() - t0 > (12 << 20) / 30e6  # the agent read at bus speed, too
    _assert_final(station, rec)
