"""Bad input on a volume: each odd entry is reported with path and reason; the rest is ingested;
nothing is written outside the data dir; symlinks are never followed."""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest

from fixtures.station import ledger_rows


def _tree(root):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def test_hostile_entries_reported_rest_ingested(make_station, bodycam, tmp_path):
    st = make_station("max_file_bytes = 50000000")
    vol, clips = bodycam(serial="ZFY0500", clips=2)
    d = os.fsencode(vol / "DCIM")
    outside = tmp_path / "outside.MP4"
    outside.write_bytes(b"not on the volume")
    os.symlink(outside, vol / "DCIM" / "link_out.MP4")
    os.symlink("/etc", vol / "DCIM" / "etc_link")
    os.mkfifo(vol / "DCIM" / "fifo.MP4")
    if os.geteuid() == 0:
        os.mknod(vol / "DCIM" / "dev.MP4", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with open(os.path.join(d, b"bad\xff\xfe name.MP4"), "wb") as fh:
        fh.write(b"\x00" * 100)
    with open(os.path.join(d, b"line\nbreak.MP4"), "wb") as fh:
        fh.write(b"\x01" * 100)
    long_name = "L" * 251 + ".MP4"
    (vol / "DCIM" / long_name).write_bytes(b"\x02" * 100)
    with open(vol / "DCIM" / "huge.MP4", "wb") as fh:
        fh.truncate(60_000_000)  # sparse, above max_file_bytes
    before = _tree(vol)
    before_outside = outside.read_bytes()

    out = st.cli("ingest", str(vol), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    issues = {i["path"]: i for i in result["issues"]}
    assert issues["DCIM/link_out.MP4"]["reason"].startswith("symlink")
    assert issues["DCIM/etc_link"]["kind"] == "refused"
    assert "FIFO" in issues["DCIM/fifo.MP4"]["reason"]
    if os.geteuid() == 0:
        assert "device node" in issues["DCIM/dev.MP4"]["reason"]
    assert "max_file_bytes" in issues["DCIM/huge.MP4"]["reason"]

    rows = ledger_rows(st, "SELECT source_path, state, sha256 FROM recordings")
    paths = {r["source_path"]: r for r in rows}
    # the odd-but-regular names are evidence and were copied, shown escaped
    assert paths["DCIM/bad\\xff\\xfe name.MP4"]["state"] == "spooled"
    assert paths["DCIM/line\\x0abreak.MP4"]["state"] == "spooled"
    assert paths[f"DCIM/{long_name}"]["state"] == "spooled"
    for c in clips:
        assert paths[str(c.relative_to(vol))]["state"] == "spooled"
    assert len(rows) == len(clips) + 3
    # refused entries are in the ledger too (volume_issues), not only on stdout
    refused = ledger_rows(st, "SELECT path, reason FROM volume_issues WHERE kind='refused'")
    assert {r["path"] for r in refused} >= {"DCIM/link_out.MP4", "DCIM/fifo.MP4", "DCIM/huge.MP4"}
    # nothing written on the volume or through the link
    assert _tree(vol) == before
    assert outside.read_bytes() == before_outside


def test_file_changing_while_read_fails_cleanly_then_recovers(station, tmp_path):
    vol = tmp_path / "CHG0001"
    (vol / "DCIM").mkdir(parents=True)
    (vol / "DEVINFO.TXT").write_text("serial=CHG0001\n")
    clip = vol / "DCIM" / "CHG0001_100001_20260921083000_0001.MP4"
    clip.write_bytes(os.urandom(64 << 20))
    os.utime(clip, (1_700_000_000, 1_700_000_000))

    from agent.ingest.ingestor import Ingestor

    ctx = station.context()
    ing = Ingestor(ctx)
    ing.register_volume(vol)
    row = ing.claim(retry_seconds=0)

    def scribble():
        time.sleep(0.01)
        with open(clip, "r+b") as fh:
            fh.seek(10)
            fh.write(b"changed")

    t = threading.Thread(target=scribble)
    t.start()
    outcome = ing.ingest(row)
    t.join()
    assert outcome.state == "failed" and "changed" in outcome.reason
    assert not list((ctx.spool).rglob("*.MP4"))  # nothing half-copied kept
    # next pass sees the new size/mtime as the same recording, now stable: it is ingested
    os.utime(clip, (1_700_000_500, 1_700_000_500))
    ing.register_volume(vol)
    assert ing.claim(retry_seconds=0) is None  # just changed: it waits to settle first
    time.sleep(ctx.cfg.detect.settle_seconds + 0.1)
    again = ing.claim(retry_seconds=0)
    assert again is not None and again["id"] == row["id"]
    assert ing.ingest(again).state == "spooled"


def test_full_spool_stops_cleanly_with_a_message(make_station, bodycam):
    st = make_station()
    cfg = st.config_path.read_text().replace(
        "spool_reserve_bytes = 0", "spool_reserve_bytes = 1000000000000000"
    )
    st.config_path.write_text(cfg)
    vol, clips = bodycam(serial="ZFY0501", clips=2)
    out = st.cli("ingest", str(vol))
    assert out.returncode != 0
    assert "spool_reserve_bytes" in out.stderr and "Ingest paused" in out.stderr
    rows = ledger_rows(st, "SELECT state FROM recordings")
    assert rows and all(r["state"] == "discovered" for r in rows)
    assert all(c.exists() for c in clips)


@pytest.mark.parametrize("bad", ['[ingest]\nmax_parallel = "x"', "[ingest]\nbogus = 1"])
def test_bad_config_names_the_key(station, bad):
    station.config_path.write_text(bad)
    out = station.cli("check-config")
    assert out.returncode == 78
    assert "ingest.max_parallel" in out.stderr or "ingest.bogus" in out.stderr
