"""agent.rules.mediainfo reads durations and playability from headers, matching ffprobe."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import wave
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.rules.mediainfo import MediaInfo, probe
from simulators.bodycam import BodycamSpec, write_volume

# tests/ has no __init__.py (yet); make its helpers importable however pytest is invoked.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolcheck import require_tool  # noqa: E402


def ffprobe_duration(path: Path) -> float:
    exe = require_tool("ffprobe")
    out = subprocess.run(
        [exe, "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout)["format"]["duration"])


def box(btype: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), btype) + payload


def mvhd(version: int, timescale: int, duration: int) -> bytes:
    if version == 1:
        body = struct.pack(">B3xQQIQ", 1, 0, 0, timescale, duration)
    else:
        body = struct.pack(">B3xIIII", 0, 0, 0, timescale, duration)
    return box(b"mvhd", body + b"\0" * 80)


FTYP = box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("vol")
    spec = BodycamSpec(
        serial="ZFY0009",
        officer="100001",
        clips=3,
        seconds=1.5,
        start=datetime(2024, 1, 2, 8, 0),
        faults=("truncated", "zero-byte"),
    )
    return write_volume(out, spec)


def test_duration_matches_ffprobe(clips):
    for clip in clips[:2]:
        info = probe(clip)
        assert info.playable and info.reason is None
        assert info.duration_s == pytest.approx(ffprobe_duration(clip), abs=0.2)
        assert info.duration_s == pytest.approx(1.5, abs=0.2)


@pytest.mark.parametrize("seconds", [0.5, 3.3])
def test_duration_tracks_clip_length(tmp_path, seconds):
    (clip,) = write_volume(
        tmp_path, BodycamSpec(serial="S1", officer="1", clips=1, seconds=seconds)
    )
    assert probe(clip).duration_s == pytest.approx(ffprobe_duration(clip), abs=0.2)


def test_truncated_clip_is_not_playable(clips):
    info = probe(clips[2])
    assert info == MediaInfo(info.duration_s, False, info.reason)
    assert "truncated" in (info.reason or "")


def test_zero_byte_clip_is_not_playable(clips):
    assert probe(clips[3]) == MediaInfo(None, False, "empty file")


def test_probe_fd_leaves_offset_alone(clips):
    fd = os.open(clips[0], os.O_RDONLY)
    try:
        os.lseek(fd, 123, os.SEEK_SET)
        assert probe(fd) == probe(clips[0])
        assert os.lseek(fd, 0, os.SEEK_CUR) == 123
    finally:
        os.close(fd)


@pytest.mark.parametrize("version", [0, 1])
def test_mvhd_versions(tmp_path, version):
    path = tmp_path / "a.mov"
    path.write_bytes(FTYP + box(b"moov", mvhd(version, 600, 600 * 42)) + box(b"mdat", b"x" * 10))
    assert probe(path) == MediaInfo(42.0, True, None)


def test_unknown_duration_is_none(tmp_path):
    path = tmp_path / "a.mp4"
    path.write_bytes(FTYP + box(b"moov", mvhd(0, 1000, 0xFFFFFFFF)))
    assert probe(path) == MediaInfo(None, True, None)


def test_largesize_and_size_zero_boxes(tmp_path):
    path = tmp_path / "a.mp4"
    moov = box(b"moov", mvhd(0, 1000, 2500))
    mdat64 = struct.pack(">I4sQ", 1, b"mdat", 16 + 5) + b"12345"
    to_eof = struct.pack(">I4s", 0, b"free") + b"padding"
    path.write_bytes(FTYP + moov + mdat64 + to_eof)
    assert probe(path) == MediaInfo(2.5, True, None)


def test_huge_sparse_file_is_probed_by_seeking(tmp_path):
    # A 6 GiB mdat with moov at the end: reading it would take seconds and gigabytes.
    path = tmp_path / "big.mp4"
    mdat_size = 6 * 1024**3
    with path.open("wb") as f:
        f.write(FTYP + struct.pack(">I4sQ", 1, b"mdat", mdat_size))
        f.seek(len(FTYP) + mdat_size)
        f.write(box(b"moov", mvhd(1, 90000, 90000 * 3600)))
    started = time.monotonic()
    assert probe(path) == MediaInfo(3600.0, True, None)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (FTYP + box(b"mdat", b"x" * 100), "no 'moov'"),
        (FTYP + box(b"moov", box(b"trak")), "no 'mvhd'"),
        (FTYP + struct.pack(">I4s", 4, b"mdat"), "invalid size"),
        (FTYP + b"\x00\x01", "stray bytes"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not an ISO-BMFF"),
        (FTYP + box(b"moov", struct.pack(">I4s", 9999, b"mvhd")), "past the end of its parent"),
    ],
)
def test_broken_mp4_is_not_playable(tmp_path, content, reason):
    path = tmp_path / "x.MP4"
    path.write_bytes(content)
    info = probe(path)
    assert not info.playable and reason in (info.reason or ""), info


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_raises(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "g.mp4"
    path.write_bytes(FTYP + data)
    info = probe(path)
    assert isinstance(info.playable, bool)
    assert info.playable or info.reason


def test_wav_duration_from_riff_header(tmp_path):
    path = tmp_path / "rec.WAV"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * 3)
    info = probe(path)
    assert info.playable and info.duration_s == pytest.approx(3.0)
    assert info.duration_s == pytest.approx(ffprobe_duration(path), abs=0.2)


def test_streamed_wav_without_sizes_uses_file_length(tmp_path):
    path = tmp_path / "live.wav"
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    header += b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(header + b"\0" * 32000 * 2)
    assert probe(path) == MediaInfo(2.0, True, None)


def test_jpeg_magic(tmp_path):
    good, bad = tmp_path / "a.jpg", tmp_path / "b.JPEG"
    good.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 50)
    bad.write_bytes(b"GIF89a")
    assert probe(good) == MediaInfo(None, True, None)
    assert not probe(bad).playable and "FFD8" in (probe(bad).reason or "")


@pytest.mark.parametrize("ext", [".ts", ".avi", ".mkv", ".amr", ".mp3", ".aac"])
def test_other_types_are_trusted_unless_empty(tmp_path, ext):
    path = tmp_path / f"f{ext}"
    path.write_bytes(b"\x47" + b"\0" * 187)
    assert probe(path) == MediaInfo(None, True, None)
    path.write_bytes(b"")
    assert probe(path) == MediaInfo(None, False, "empty file")


def test_fd_content_is_sniffed(tmp_path):
    path = tmp_path / "noext"
    path.write_bytes(FTYP + box(b"mdat", b"x"))
    with path.open("rb") as f:
        assert not probe(f.fileno()).playable


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nope.mp4")
