"""Simulated body-worn recorder volume with real, playable footage.

Writes the directory layout a docked recorder presents over USB mass storage (DEVINFO.TXT,
DCIM/<date>/<serial>_<officer>_<time>_<seq>.MP4, SYSTEM/LOG.TXT), so the agent's detect,
identify and ingest paths run against real files. Faults reproduce what docks meet in the field:
a recording cut off when the battery died, a file still being written, a 0-byte clip, a recorder
clock set wrong, and non-evidence clutter.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

FAULTS = ("truncated", "growing", "zero-byte", "wrong-clock", "extra-files")

# Offset a "wrong-clock" recorder runs at when the spec gives none: large enough to be an
# obvious drift (a recorder still on UTC+5 after a trip, or never set after a battery swap).
DEFAULT_WRONG_CLOCK_S = 3 * 3600.0

MODEL = "DSJ-SIM1"
FIRMWARE = "SIM-1.0.0"

_ID_RE = re.compile(r"[A-Za-z0-9]+")

# Where the not-yet-written tail of a "growing" clip waits for grow_clip(). It lives on the
# volume (under SYSTEM/, never evidence) so a separate process, e.g. the CLI, can grow the clip.
_GROW_DIR = Path("SYSTEM") / ".grow"


@dataclass
class BodycamSpec:
    """What to put on the simulated volume; see write_volume()."""

    serial: str
    officer: str
    unit: str = "UNIT01"
    officer_name: str = "张三"
    unit_name: str = "某市生态环境局执法支队"
    vendor: str = "ZFY"
    clips: int = 3
    seconds: float = 2.0
    start: datetime | None = None
    timezone: str = "Asia/Shanghai"
    clock_offset_s: float = 0.0
    faults: tuple[str, ...] = ()
    width: int = 320
    height: int = 240
    fps: int = 10

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        for name in ("serial", "officer", "unit", "vendor"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _ID_RE.fullmatch(value):
                raise ValueError(f"{name}: must match [A-Za-z0-9]+, got {value!r}")
        if not isinstance(self.clips, int) or self.clips < 1:
            raise ValueError(f"clips: must be an integer >= 1, got {self.clips!r}")
        if not self.seconds > 0:
            raise ValueError(f"seconds: must be > 0, got {self.seconds!r}")
        if self.fps < 1:
            raise ValueError(f"fps: must be >= 1, got {self.fps!r}")
        # mp4v (MPEG-4 part 2) needs even dimensions; small sizes make putText unreadable.
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            raise ValueError(
                f"width/height: must be even and >= 64, got {self.width}x{self.height}"
            )
        unknown = [f for f in self.faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"faults: unknown {unknown}, choose from {list(FAULTS)}")
        if "truncated" in self.faults and "growing" in self.faults and self.clips < 2:
            raise ValueError("faults: 'truncated' with 'growing' needs clips >= 2")
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from exc

    def effective_offset(self) -> timedelta:
        """How far the recorder's clock is ahead of true time."""
        offset = self.clock_offset_s
        if "wrong-clock" in self.faults and offset == 0:
            offset = DEFAULT_WRONG_CLOCK_S
        return timedelta(seconds=offset)


@dataclass(frozen=True)
class _Clip:
    seq: int
    start: datetime  # recorder's (possibly wrong) local time, aware
    seconds: float

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)


def clip_name(spec: BodycamSpec, start: datetime, seq: int) -> str:
    """The recorder's file name for a clip starting at `start` (recorder local time)."""
    return f"{spec.serial}_{spec.officer}_{start:%Y%m%d%H%M%S}_{seq:04d}.MP4"


def write_volume(out: Path, spec: BodycamSpec) -> list[Path]:
    """Write a recorder volume under `out`; return the evidence clip paths, in order."""
    spec.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clips = list(_plan(spec))
    _write_devinfo(out, spec)

    truncated_seq = growing_seq = None
    if "growing" in spec.faults:
        growing_seq = clips[-1].seq
    if "truncated" in spec.faults:
        # The growing clip is already incomplete; cut the one before it instead.
        truncated_seq = clips[-1].seq if growing_seq is None else clips[-2].seq

    paths: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="bodycam-") as tmp:
        for clip in clips:
            # OpenCV's writer is handed an ASCII temp path: it cannot be trusted with the
            # volume's path (non-ASCII mount labels) and must not leave a half-written file
            # on the volume that the agent could pick up mid-encode.
            rendered = Path(tmp) / f"{clip.seq}.mp4"
            _render(rendered, spec, clip)
            dest = out / "DCIM" / f"{clip.start:%Y%m%d}" / clip_name(spec, clip.start, clip.seq)
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = rendered.stat().st_size
            if clip.seq == truncated_seq:
                _copy_head(rendered, dest, size // 2)
            elif clip.seq == growing_seq:
                _copy_head(rendered, dest, size // 2)
                _stash_tail(out, dest, rendered, size // 2, clip.end)
            else:
                shutil.copyfile(rendered, dest)
            _set_mtime(dest, clip.end)
            paths.append(dest)

    if "zero-byte" in spec.faults:
        # A recorder that lost power right after creating the file: the name, nothing else.
        last = clips[-1]
        start = last.end + timedelta(seconds=1)
        dest = out / "DCIM" / f"{start:%Y%m%d}" / clip_name(spec, start, last.seq + 1)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.touch()
        _set_mtime(dest, start)
        paths.append(dest)

    _write_log(out, spec, clips, paths)
    if "extra-files" in spec.faults:
        _write_extra_files(out, clips[0].start)
    logger.info("wrote simulated volume %s: %d clips, faults %s", out, len(paths), spec.faults)
    return paths


def grow_clip(path: Path, seconds: float, chunk: int = 64 * 1024) -> None:
    """Append the rest of a 'growing' clip to `path`, spread over `seconds` of wall time.

    Sizes and mtimes change chunk by chunk as a recorder still writing would; at the end the
    mtime is set to the clip's end time, like every other clip of the volume.
    """
    path = Path(path)
    tail = _tail_path(path.parents[2], path)
    if not tail.exists():
        raise ValueError(f"{path}: not a growing clip (no pending data at {tail})")
    if chunk < 1:
        raise ValueError(f"chunk: must be >= 1, got {chunk!r}")
    total = tail.stat().st_size
    chunks = max(1, -(-total // chunk))
    pause = max(0.0, seconds) / chunks
    end_mtime = tail.stat().st_mtime
    with tail.open("rb") as src, path.open("ab") as dst:
        while data := src.read(chunk):
            dst.write(data)
            # Flushed per chunk so watchers see the size change, not one jump at close.
            dst.flush()
            os.fsync(dst.fileno())
            time.sleep(pause)
    os.utime(path, (end_mtime, end_mtime))
    tail.unlink()
    try:
        tail.parent.rmdir()
    except OSError:
        pass  # other clips still pending


def _plan(spec: BodycamSpec) -> Iterator[_Clip]:
    zone = ZoneInfo(spec.timezone)
    if spec.start is None:
        now = datetime.now(zone).replace(microsecond=0)
        start = now - timedelta(seconds=spec.clips * spec.seconds + 60)
    elif spec.start.tzinfo is None:
        start = spec.start.replace(tzinfo=zone)
    else:
        start = spec.start.astimezone(zone)
    start += spec.effective_offset()
    for i in range(spec.clips):
        yield _Clip(
            seq=i + 1, start=start + timedelta(seconds=i * spec.seconds), seconds=spec.seconds
        )


def _render(path: Path, spec: BodycamSpec, clip: _Clip) -> None:
    """Encode one clip with a burned-in overlay, as recorders stamp their footage."""
    import cv2
    import numpy as np

    fourcc = cv2.VideoWriter.fourcc(*"mp4v")
    writer = cv2.VideoWriter(str(path), fourcc, float(spec.fps), (spec.width, spec.height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4v video to {path}")
    frames = max(1, round(clip.seconds * spec.fps))
    w, h = spec.width, spec.height
    base = np.zeros((h, w, 3), np.uint8)
    # A fixed per-clip tint so clips differ from each other, not only frame to frame.
    base[:] = ((clip.seq * 53) % 200 + 30, 90, (clip.seq * 97) % 200 + 30)
    font = cv2.FONT_HERSHEY_SIMPLEX
    try:
        for n in range(frames):
            frame = base.copy()
            t = n / spec.fps
            x = int((w - 40) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 2.0))) + 20
            cv2.circle(frame, (x, h // 2), 16, (255, 255, 255), -1)
            stamp = (clip.start + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S")
            cv2.rectangle(frame, (0, 0), (w, 38), (0, 0, 0), -1)
            cv2.putText(frame, stamp, (4, 15), font, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            ident = f"{spec.serial} {spec.officer}"
            cv2.putText(frame, ident, (4, 32), font, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.putText(frame, f"#{n:05d}", (w - 70, h - 8), font, 0.4, (0, 255, 255), 1)
            writer.write(frame)
    finally:
        # release() writes the moov box; without it the file is as broken as a dead battery's.
        writer.release()


def _copy_head(src: Path, dest: Path, nbytes: int) -> None:
    with src.open("rb") as fin, dest.open("wb") as fout:
        remaining = nbytes
        while remaining > 0:
            data = fin.read(min(remaining, 1024 * 1024))
            if not data:
                break
            fout.write(data)
            remaining -= len(data)


def _tail_path(volume: Path, clip: Path) -> Path:
    return volume / _GROW_DIR / (clip.name + ".rest")


def _stash_tail(volume: Path, dest: Path, rendered: Path, offset: int, end: datetime) -> None:
    tail = _tail_path(volume, dest)
    tail.parent.mkdir(parents=True, exist_ok=True)
    with rendered.open("rb") as fin, tail.open("wb") as fout:
        fin.seek(offset)
        shutil.copyfileobj(fin, fout)
    # The tail's mtime carries the clip's intended end time to grow_clip().
    _set_mtime(tail, end)


def _set_mtime(path: Path, when: datetime) -> None:
    ts = when.timestamp()
    os.utime(path, (ts, ts))


def _write_devinfo(out: Path, spec: BodycamSpec) -> None:
    fields = {
        "vendor": spec.vendor,
        "model": MODEL,
        "serial": spec.serial,
        "officer_id": spec.officer,
        "officer_name": spec.officer_name,
        "unit_id": spec.unit,
        "unit_name": spec.unit_name,
        "firmware": FIRMWARE,
    }
    text = "".join(f"{k}={v}\n" for k, v in fields.items())
    (out / "DEVINFO.TXT").write_text(text, encoding="utf-8")


def _write_log(out: Path, spec: BodycamSpec, clips: list[_Clip], paths: list[Path]) -> None:
    (out / "SYSTEM").mkdir(exist_ok=True)
    first = clips[0].start - timedelta(seconds=5)
    lines = [f"{first:%Y-%m-%d %H:%M:%S} POWER ON fw={FIRMWARE} sn={spec.serial}"]
    for clip, path in zip(clips, paths, strict=False):
        lines.append(f"{clip.start:%Y-%m-%d %H:%M:%S} REC START {path.name}")
        lines.append(f"{clip.end:%Y-%m-%d %H:%M:%S} REC STOP {path.name}")
    (out / "SYSTEM" / "LOG.TXT").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_extra_files(out: Path, when: datetime) -> None:
    """Non-evidence clutter real volumes carry; the agent must list it and leave it alone."""
    day = out / "DCIM" / f"{when:%Y%m%d}"
    day.mkdir(parents=True, exist_ok=True)
    (day / f"GPS_{when:%Y%m%d%H%M%S}.LOG").write_text("$GPGGA,,,,,,0,00,,,M,,M,,*66\n")
    (out / "SYSTEM" / "CONFIG.BIN").write_bytes(bytes(range(256)) * 4)
    (out / "SYSTEM" / "UPDATE.BIN").write_bytes(b"\x00" * 512)
    (out / "readme.txt").write_text("Body-worn recorder. Do not delete SYSTEM.\n")
