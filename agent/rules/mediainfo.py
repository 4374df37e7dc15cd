"""Facts about a media file read from its container headers, without decoding it.

The agent needs two things per recording: its duration (to compute the end time, and with it
the deadline) and whether it is playable (a recorder whose battery died mid-recording leaves an
MP4 without its `moov` index). Both come from a few header reads: ISO-BMFF boxes are walked by
seeking from header to header, so a multi-gigabyte file costs a handful of small reads.
Reads use os.pread, so probing an fd the caller is copying from does not move its offset.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

# ISO-BMFF family: MP4, QuickTime MOV, AAC in MP4, 3GPP (some recorders write .3GP).
_BMFF_EXTS = {".mp4", ".mov", ".m4a", ".m4v", ".3gp"}
_JPEG_EXTS = {".jpg", ".jpeg"}
_WAV_EXTS = {".wav"}

# A well-formed file has a handful of top-level boxes; a limit keeps a crafted or corrupt file
# (thousands of tiny boxes) from turning a header probe into a long loop of reads.
_MAX_BOXES = 10_000
# Top-level box types that may open an ISO-BMFF file: old QuickTime files start with wide/mdat.
_BMFF_FIRST = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp"}


@dataclass(frozen=True)
class MediaInfo:
    """What probe() learned: duration in seconds (None if unknown) and playability."""

    duration_s: float | None
    playable: bool
    reason: str | None


class _Bad(Exception):
    """Content is not what it claims to be; becomes playable=False with this reason."""


def probe(path: Path | int) -> MediaInfo:
    """Probe a file by path or open fd; bad content never raises, I/O errors do."""
    if isinstance(path, int):
        return _probe_fd(path, kind=None)
    fd = os.open(path, os.O_RDONLY)
    try:
        return _probe_fd(fd, kind=Path(path).suffix.lower())
    finally:
        os.close(fd)


def _probe_fd(fd: int, kind: str | None) -> MediaInfo:
    size = os.fstat(fd).st_size
    if size == 0:
        return MediaInfo(None, False, "empty file")
    if kind is None or kind not in _BMFF_EXTS | _JPEG_EXTS | _WAV_EXTS:
        sniffed = _sniff(fd)
        if sniffed is None:
            # .ts .avi .mkv .amr .mp3 .aac: nothing cheap and reliable to check; not ours to doubt.
            return MediaInfo(None, True, None)
        kind = sniffed
    try:
        if kind in _BMFF_EXTS:
            return MediaInfo(_bmff_duration(fd, size), True, None)
        if kind in _JPEG_EXTS:
            if os.pread(fd, 2, 0) != b"\xff\xd8":
                raise _Bad("not a JPEG file (no FFD8 start-of-image marker)")
            return MediaInfo(None, True, None)
        return MediaInfo(_wav_duration(fd, size), True, None)
    except _Bad as exc:
        return MediaInfo(None, False, str(exc))


def _sniff(fd: int) -> str | None:
    head = os.pread(fd, 12, 0)
    if head[:2] == b"\xff\xd8":
        return ".jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    if head[4:8] in _BMFF_FIRST:
        return ".mp4"
    return None


def _read_exact(fd: int, n: int, offset: int) -> bytes:
    data = os.pread(fd, n, offset)
    if len(data) != n:
        raise _Bad(f"file ends inside a header at byte {offset}")
    return data


def _boxes(fd: int, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload offset, box end) for each box in [start, end); raises _Bad if broken."""
    found: list[tuple[bytes, int, int]] = []
    offset = start
    while offset < end:
        if len(found) >= _MAX_BOXES:
            raise _Bad(f"more than {_MAX_BOXES} boxes; not a recording")
        if end - offset < 8:
            raise _Bad(f"{end - offset} stray bytes at {offset}, too short for a box header")
        size, btype = struct.unpack(">I4s", _read_exact(fd, 8, offset))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", _read_exact(fd, 8, offset + 8))
            header = 16
        elif size == 0:
            size = end - offset  # "extends to the end of the file" (or of the parent)
        if not all(0x20 <= c <= 0x7E for c in btype) and btype[:1] != b"\xa9":
            raise _Bad(f"invalid box type {btype!r} at {offset}; not an ISO-BMFF file")
        if size < header:
            raise _Bad(f"box {_name(btype)} at {offset} has invalid size {size}")
        if offset + size > end:
            # The signature of a recording cut off mid-write: mdat claims bytes never written.
            raise _Bad(
                f"box {_name(btype)} at {offset} runs past the end of "
                f"{'the file' if start == 0 else 'its parent'} "
                f"({offset + size} > {end} bytes); truncated"
            )
        found.append((btype, offset + header, offset + size))
        offset += size
    return found


def _name(btype: bytes) -> str:
    return repr(btype.decode("latin-1"))


def _bmff_duration(fd: int, size: int) -> float | None:
    top = _boxes(fd, 0, size)
    moov = next(((s, e) for t, s, e in top if t == b"moov"), None)
    if moov is None:
        raise _Bad("no 'moov' box: recording was not finalised")
    children = _boxes(fd, *moov)
    mvhd = next(((s, e) for t, s, e in children if t == b"mvhd"), None)
    if mvhd is None:
        raise _Bad("'moov' box has no 'mvhd' movie header")
    start, end = mvhd
    version = _read_exact(fd, 1, start)[0]
    # Full-box header (version, flags), then creation and modification times, 32- or 64-bit.
    layout = (">IQ", 4 + 16) if version == 1 else (">II", 4 + 8)
    fmt, at = layout
    if start + at + struct.calcsize(fmt) > end:
        raise _Bad("'mvhd' box too short")
    timescale, duration = struct.unpack(fmt, _read_exact(fd, struct.calcsize(fmt), start + at))
    all_ones = (1 << 64) - 1 if version == 1 else (1 << 32) - 1
    if timescale == 0 or duration == all_ones:
        return None  # duration "unknown", as the spec allows
    if duration == 0 and any(t == b"mvex" for t, _, _ in children):
        return None  # fragmented MP4: the duration lives in the fragments, not in mvhd
    return duration / timescale


def _wav_duration(fd: int, size: int) -> float | None:
    head = os.pread(fd, 12, 0)
    if head[:4] == b"RF64" and head[8:12] == b"WAVE":
        return None  # >4 GiB WAV; its sizes are in a ds64 chunk we do not need to trust here
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise _Bad("not a RIFF/WAVE file")
    byte_rate = 0
    offset = 12
    for _ in range(_MAX_BOXES):
        header = os.pread(fd, 8, offset)
        if len(header) < 8:
            return None
        ckid, cksize = struct.unpack("<4sI", header)
        if ckid == b"fmt ":
            fmt = os.pread(fd, 12, offset + 8)
            if len(fmt) == 12:
                byte_rate = struct.unpack("<I", fmt[8:12])[0]
        elif ckid == b"data":
            available = size - (offset + 8)
            # A live-captured stream leaves the size 0 or 0xFFFFFFFF; a cut one claims more
            # than is there. Either way what a player plays is what is on disk.
            if cksize in (0, 0xFFFFFFFF) or cksize > available:
                cksize = available
            return cksize / byte_rate if byte_rate else None
        offset += 8 + cksize + (cksize & 1)  # chunks are word-aligned
    return None
