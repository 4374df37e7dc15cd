"""Acceptance: kill -9 in the middle of a copy; after restart nothing partial is spooled,
every recording is completed and the custody chain verifies."""

from __future__ import annotations

import hashlib
import json
import os
import signal

import pytest

from fixtures.station import ledger_rows, wait_for


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spool_files(station) -> set[str]:
    spool = station.data_dir / "spool"
    # Files recovery moved aside (.orphans) are accounted for by a custody event each; the
    # root marker is not a copy.
    return {
        str(p)
        for p in spool.rglob("*")
        if p.is_file() and ".orphans" not in p.parts and not p.name.startswith(".evid")
    }


def _assert_consistent(station, clips) -> None:
    rows = ledger_rows(station, "SELECT * FROM recordings")
    assert len(rows) == len(clips), "no duplicates, nothing lost"
    by_name = {r["source_path"].rsplit("/", 1)[-1]: r for r in rows}
    for clip in clips:
        r = by_name[clip.name]
        assert r["state"] in ("spooled", "archived")
        assert r["sha256"] == _sha(clip)
        assert _sha(station.data_dir / "spool" / r["spool_path"]) == r["sha256"]
    # Every file in the spool is vouched for by a ledger row: no partial or orphan copy.
    spool = station.data_dir / "spool"
    assert _spool_files(station) == {str(spool / r["spool_path"]) for r in rows}


@pytest.mark.parametrize("point", ["copy.mid", "copy.after_fsync", "copy.after_rename"])
def test_crash_point_then_restart(station, bodycam, point):
    vol, clips = bodycam(serial="ZFY0200", clips=3)
    crashed = station.cli("ingest", str(vol), env={"EVIDENCE_AGENT_CRASHPOINT": f"{point}:2"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    rows = ledger_rows(station, "SELECT state, spool_path FROM recordings")
    spooled = [r for r in rows if r["state"] == "spooled"]
    assert len(spooled) == 1  # the first clip completed before the crash on the second
    spool = station.data_dir / "spool"
    assert {str(spool / r["spool_path"]) for r in spooled} <= _spool_files(station)

    again = station.cli("ingest", str(vol), "--json", check=True)
    assert json.loads(again.stdout)["failed"] == []
    _assert_consistent(station, clips)
    verify = station.cli("verify")
    assert verify.returncode == 0, verify.stdout


def test_external_kill_during_large_copy(station, daemon, tmp_path):
    vol = station.mount_root / "BIG0001"
    (vol / "DCIM").mkdir(parents=True)
    (vol / "DEVINFO.TXT").write_text("vendor=ZFY\nserial=BIG0001\n", encoding="utf-8")
    big = vol / "DCIM" / "BIG0001_100001_20260921083000_0001.MP4"
    with open(big, "wb") as fh:
        for _ in range(48):
            fh.write(os.urandom(8 << 20))  # 384 MiB: long enough to be caught mid-copy
    small = vol / "DCIM" / "BIG0001_100001_20260921090000_0002.MP4"
    small.write_bytes(os.urandom(1 << 20))
    os.utime(big, (1_700_000_000, 1_700_000_000))
    os.utime(small, (1_700_000_100, 1_700_000_100))

    proc = daemon(station)
    wait_for(
        lambda: ledger_rows(
            station, "SELECT 1 FROM recordings WHERE state='copying' AND size > 1000000000 / 10"
        ),
        timeout=60,
        interval=0.02,
        what="copy of the large clip in progress",
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = ledger_rows(station, "SELECT state FROM recordings WHERE size > 100000000")
    assert rows[0]["state"] == "copying"  # killed mid-copy: not spooled

    daemon(station)
    wait_for(
        lambda: (
            len(
                ledger_rows(
                    station, "SELECT 1 FROM recordings WHERE state IN ('spooled', 'archived')"
                )
            )
            == 2
        ),
        timeout=120,
        what="both recordings spooled after restart",
    )
    _assert_consistent(station, [big, small])
    assert station.cli("verify").returncode == 0
