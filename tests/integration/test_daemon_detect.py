"""Acceptance: the running daemon picks up volumes that appear, without a restart."""

from __future__ import annotations

import shutil

from fixtures.station import ledger_rows, wait_for


def _spooled(station, serial):
    return ledger_rows(
        station,
        "SELECT r.* FROM recordings r JOIN devices d ON d.id = r.device_id"
        " WHERE d.serial = ? AND r.state IN ('spooled', 'archived')",
        (serial,),
    )


def test_daemon_ingests_directory_volume_and_mounted_filesystem(
    station, bodycam, daemon, exfat_volume, tmp_path
):
    proc = daemon(station)
    wait_for(lambda: (station.data_dir / "ledger.sqlite3").exists(), what="daemon start")

    # 1. a directory volume (simulator layout) created under the mount root
    vol, clips = bodycam(serial="ZFY0101", clips=2)
    shutil.copytree(vol, station.mount_root / "ZFY0101")
    wait_for(
        lambda: len(_spooled(station, "ZFY0101")) == 2, timeout=60, what="directory volume ingested"
    )

    # 2. an empty directory appears first, then a real exFAT filesystem is mounted on it
    src, clips2 = bodycam(serial="ZFY0102", clips=2)
    point = station.mount_root / "REC0102"
    point.mkdir()
    exfat_volume(src, point, "REC0102")
    wait_for(
        lambda: len(_spooled(station, "ZFY0102")) == 2,
        timeout=60,
        what="mounted exFAT volume ingested",
    )
    assert proc.poll() is None, "daemon must still be running"
    rows = _spooled(station, "ZFY0102")
    assert {r["source_path"].rsplit("/", 1)[-1] for r in rows} == {c.name for c in clips2}
