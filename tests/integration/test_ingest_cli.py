"""Acceptance: simulate bodycam → ingest → spooled, hashes equal sha256sum, verify, status."""

from __future__ import annotations

import json
import subprocess

from toolcheck import require_tool


def _sha256sum(path: str) -> str:
    out = subprocess.run(
        [require_tool("sha256sum"), path], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[0]


def test_simulate_then_ingest_spools_every_clip(station, tmp_path):
    vol = tmp_path / "ZFY0042"
    station.cli(
        "simulate",
        "bodycam",
        "--out",
        str(vol),
        "--serial",
        "ZFY0042",
        "--officer",
        "200101",
        "--unit",
        "UNIT07",
        "--clips",
        "3",
        "--seconds",
        "1",
        "--start",
        "2026-09-30T09:00:00",
        "--fault",
        "extra-files",
        check=True,
    )
    clips = sorted(vol.rglob("*.MP4"))
    assert len(clips) == 3

    first = station.cli("ingest", str(vol), "--json", check=True)
    result = json.loads(first.stdout)
    assert result["new"] == 3 and result["copied"] == 3 and result["failed"] == []
    assert any(i["kind"] == "ignored" for i in result["issues"])  # the LOG/BIN files

    doc = json.loads(station.cli("status", "--json", check=True).stdout)
    recs = {r["source_path"]: r for r in doc["recordings"]}
    assert len(recs) == 3
    for clip in clips:
        r = recs[str(clip.relative_to(vol))]
        assert r["state"] == "spooled"
        assert r["sha256"] == _sha256sum(str(clip))
        assert r["serial"] == "ZFY0042" and r["officer"] == "200101" and r["unit"] == "UNIT07"
        assert r["start"].startswith("2026-09-30T09:00") and r["start"].endswith("+08:00")
        assert r["time_source"]["start"] == "name:zfy"
        # Ended Wednesday 2026-09-30, National Day follows: end of Friday 2026-10-09.
        assert r["deadline"] == "2026-10-09T23:59:59.999999+08:00"
        assert r["deadline_met_at"]
    assert doc["recorders"][0]["serial"] == "ZFY0042"
    assert doc["recorders"][0]["status"] == "unregistered"

    verify = station.cli("verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] and report["recordings_checked"] == 3

    second = json.loads(station.cli("ingest", str(vol), "--json", check=True).stdout)
    assert second["new"] == 0 and second["copied"] == 0
    doc2 = json.loads(station.cli("status", "--json", check=True).stdout)
    assert len(doc2["recordings"]) == 3
    # The source is untouched: ingest never erases.
    assert sorted(vol.rglob("*.MP4")) == clips


def test_truncated_and_empty_clips_are_evidence_flagged_unplayable(station, bodycam):
    vol, clips = bodycam(serial="ZFY0005", clips=3, faults=("truncated", "zero-byte"))
    out = station.cli("ingest", str(vol), "--json", check=True)
    assert json.loads(out.stdout)["copied"] == len(clips)
    doc = json.loads(station.cli("status", "--json", check=True).stdout)
    flags = sorted(r["playable"] for r in doc["recordings"])
    assert flags.count(False) == 2  # the truncated one and the zero-byte one
    assert all(r["state"] == "spooled" for r in doc["recordings"])
    for clip in clips:
        r = next(x for x in doc["recordings"] if x["source_path"].endswith(clip.name))
        assert r["sha256"] == _sha256sum(str(clip))


def test_wrong_recorder_clock_is_taken_from_the_name(station, bodycam):
    vol, _ = bodycam(serial="ZFY0006", clips=1, faults=("wrong-clock",))
    station.cli("ingest", str(vol), check=True)
    doc = json.loads(station.cli("status", "--json", check=True).stdout)
    assert doc["recordings"][0]["time_source"]["start"] == "name:zfy"
