"""The body-worn recorder simulator writes a volume the agent can trust to look real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.rules.mediainfo import probe
from simulators.bodycam import BodycamSpec, grow_clip, write_volume

# tests/ has no __init__.py (yet); make its helpers importable however pytest is invoked.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolcheck import require_tool  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2024, 5, 6, 9, 30, 0)  # naive: recorder local time in Asia/Shanghai
NAME_RE = re.compile(
    r"^(?P<serial>[A-Za-z0-9]+)_(?P<officer>[A-Za-z0-9]+)_(?P<ts>\d{14})_(?P<seq>\d{4})\.MP4$"
)


def ffprobe(path: Path) -> dict:
    exe = require_tool("ffprobe")
    out = subprocess.run(
        [exe, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def read_frames(path: Path) -> list:
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"OpenCV cannot open {path}"
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def spec(**kw) -> BodycamSpec:
    kw.setdefault("start", START)
    return BodycamSpec(serial="ZFY0001", officer="100234", **kw)


@pytest.fixture(scope="module")
def volume(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("vol")
    return out, write_volume(out, spec(clips=3, seconds=2.0))


def test_devinfo_fields(volume):
    out, _ = volume
    lines = (out / "DEVINFO.TXT").read_text(encoding="utf-8").splitlines()
    info = dict(line.split("=", 1) for line in lines)
    assert info["vendor"] == "ZFY"
    assert info["serial"] == "ZFY0001"
    assert info["officer_id"] == "100234"
    assert info["officer_name"] == "张三"
    assert info["unit_id"] == "UNIT01"
    assert info["unit_name"] == "某市生态环境局执法支队"
    assert info["model"] and info["firmware"]


def test_names_follow_pattern_and_clips_are_consecutive(volume):
    out, clips = volume
    assert len(clips) == 3
    for i, clip in enumerate(clips):
        m = NAME_RE.match(clip.name)
        assert m, clip.name
        assert (m["serial"], m["officer"], int(m["seq"])) == ("ZFY0001", "100234", i + 1)
        assert datetime.strptime(m["ts"], "%Y%m%d%H%M%S") == START + timedelta(seconds=2 * i)
        assert clip.parent == out / "DCIM" / "20240506"
    assert (out / "SYSTEM" / "LOG.TXT").is_file()


def test_mtime_is_end_time(volume):
    _, clips = volume
    for i, clip in enumerate(clips):
        end = (START + timedelta(seconds=2 * (i + 1))).replace(tzinfo=TZ)
        assert clip.stat().st_mtime == pytest.approx(end.timestamp(), abs=0.01)


def test_clips_are_real_video(volume):
    _, clips = volume
    for clip in clips:
        frames = read_frames(clip)
        assert len(frames) == 20  # 2 s at 10 fps
        assert frames[0].shape == (240, 320, 3)
        # The moving element and the overlay make frames differ.
        assert (frames[0] != frames[5]).any()
        info = ffprobe(clip)
        video = [s for s in info["streams"] if s["codec_type"] == "video"]
        assert video and video[0]["width"] == 320
        assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.5)


def test_aware_start_is_converted_to_recorder_zone(tmp_path):
    start = datetime(2024, 5, 6, 1, 30, tzinfo=ZoneInfo("UTC"))
    (clip,) = write_volume(tmp_path, spec(clips=1, start=start))
    assert "_20240506093000_0001" in clip.name


def test_default_start_is_recent(tmp_path):
    clips = write_volume(tmp_path, BodycamSpec(serial="A1", officer="7", clips=2, seconds=1.0))
    ts = datetime.strptime(NAME_RE.match(clips[0].name)["ts"], "%Y%m%d%H%M%S")
    age = datetime.now(TZ).replace(tzinfo=None) - ts
    assert timedelta(seconds=55) <= age <= timedelta(seconds=120)


def test_truncated_fault_leaves_unplayable_last_clip(tmp_path):
    clips = write_volume(tmp_path, spec(clips=2, faults=("truncated",)))
    assert probe(clips[0]).playable
    last = probe(clips[-1])
    assert not last.playable and "truncated" in (last.reason or "")
    assert 0 < clips[-1].stat().st_size < clips[0].stat().st_size
    exe = require_tool("ffprobe")
    assert subprocess.run([exe, "-v", "error", str(clips[-1])], capture_output=True).returncode


def test_zero_byte_fault_adds_empty_clip(tmp_path):
    clips = write_volume(tmp_path, spec(clips=2, faults=("zero-byte",)))
    assert len(clips) == 3
    assert clips[-1].stat().st_size == 0
    assert NAME_RE.match(clips[-1].name)["seq"] == "0003"
    assert probe(clips[-1]).reason == "empty file"


def test_wrong_clock_shifts_names_and_mtimes(tmp_path):
    (clip,) = write_volume(tmp_path, spec(clips=1, faults=("wrong-clock",)))
    shifted = START + timedelta(hours=3)
    assert f"_{shifted:%Y%m%d%H%M%S}_" in clip.name
    end = (shifted + timedelta(seconds=2)).replace(tzinfo=TZ)
    assert clip.stat().st_mtime == pytest.approx(end.timestamp(), abs=0.01)


def test_explicit_clock_offset(tmp_path):
    (clip,) = write_volume(tmp_path, spec(clips=1, clock_offset_s=-90))
    assert f"_{START - timedelta(seconds=90):%Y%m%d%H%M%S}_" in clip.name


def test_extra_files_are_not_evidence(tmp_path):
    clips = write_volume(tmp_path, spec(clips=1, faults=("extra-files",)))
    every = {p for p in tmp_path.rglob("*") if p.is_file()}
    others = every - set(clips)
    suffixes = {p.suffix.upper() for p in others}
    assert {".LOG", ".BIN", ".TXT"} <= suffixes
    assert all(p.suffix.upper() != ".MP4" for p in others)


def test_growing_clip_grows_to_a_playable_file(tmp_path):
    clips = write_volume(tmp_path, spec(clips=2, faults=("growing",)))
    last = clips[-1]
    half = last.stat().st_size
    assert not probe(last).playable
    sizes: list[int] = []
    grower = threading.Thread(target=grow_clip, args=(last, 1.0), kwargs={"chunk": 1024})
    grower.start()
    while grower.is_alive():
        sizes.append(last.stat().st_size)
        time.sleep(0.05)
    grower.join()
    final = last.stat().st_size
    assert any(half < s < final for s in sizes), "size should change gradually"
    assert final > half
    assert probe(last).playable
    assert float(ffprobe(last)["format"]["duration"]) == pytest.approx(2.0, abs=0.5)
    end = (START + timedelta(seconds=4)).replace(tzinfo=TZ)
    assert last.stat().st_mtime == pytest.approx(end.timestamp(), abs=0.01)
    with pytest.raises(ValueError, match="not a growing clip"):
        grow_clip(last, 0.1)


def test_truncated_and_growing_hit_different_clips(tmp_path):
    clips = write_volume(tmp_path, spec(clips=3, faults=("truncated", "growing")))
    assert [probe(c).playable for c in clips] == [True, False, False]
    grow_clip(clips[-1], 0)
    assert [probe(c).playable for c in clips] == [True, False, True]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"serial": "ZFY-01"}, "serial"),
        ({"officer": "张三"}, "officer"),
        ({"clips": 0}, "clips"),
        ({"seconds": 0}, "seconds"),
        ({"faults": ("melted",)}, "faults"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_bad_spec_names_the_field(tmp_path, kw, field):
    base = {"serial": "ZFY0001", "officer": "100234"} | kw
    with pytest.raises(ValueError, match=f"^{field}"):
        write_volume(tmp_path, BodycamSpec(**base))
    assert not list(tmp_path.iterdir())
