"""A capture run's directory: what ffmpeg (or the fallback) leaves there and what it means.

`run-NNN/` holds the segment files `seg_NNNNNN.ts`, ffmpeg's CSV segment list (times relative
to the spawn time) and `run.json` (spawn time, pid, first frame). A file is closed once the
next one exists (ffmpeg opens it only after closing this one) or the run has ended; a file the
list does not name was cut off by a crash and is salvaged. Crash recovery reads the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agent.interview import ffcmd
from agent.interview.ffproc import ProcessReport
from agent.interview.segments import Job

_SEG_RE = re.compile(r"^seg_(\d{6})\.ts$")


class Capture(Protocol):
    """A running capture (ffmpeg, or the OpenCV fallback)."""

    report: ProcessReport

    @property
    def pid(self) -> int | None: ...
    def start(self) -> None: ...
    def poll(self) -> int | None: ...
    def stop(self, timeout: float = 10.0) -> int | None: ...


@dataclass
class Run:
    dir: Path
    spawn_time: float
    capture: Capture
    spawned: float
    handed: set[int] = field(default_factory=set)
    last_end: float | None = None

    def content_start(self, want_audio: bool) -> float | None:
        """Wall clock of the first real picture (and sound): input stamps, else arrival."""
        r = self.capture.report
        starts = [r.input_start.get(0) or r.first_picture]
        if want_audio:
            starts.append(r.input_start.get(1) or r.first_sound)
        if any(s is None for s in starts):
            return None
        return max(s for s in starts if s is not None)


def parse_segment_list(path: Path) -> dict[str, tuple[float, float]]:
    """ffmpeg's CSV segment list: name -> (start, end) seconds; a torn last line is skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    out = {}
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        parts = line.strip().split(",")
        if len(parts) == 3:
            try:
                out[parts[0]] = (float(parts[1]), float(parts[2]))
            except ValueError:
                continue
    return out


def segment_files(run_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for p in run_dir.iterdir():
        m = _SEG_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def jobs_for_run(
    run_dir: Path,
    session_id: str,
    camera: str,
    spawn_time: float,
    first_wall: float | None,
    include_last: bool,
    skip: set[int],
    video_only: bool = False,
) -> list[tuple[int, Job]]:
    """Closed segments of a run with their wall-clock times (also used by crash recovery)."""
    files = segment_files(run_dir)
    listed = parse_segment_list(run_dir / ffcmd.SEGMENT_LIST)
    if not include_last and files:
        files = files[:-1]  # ffmpeg opens the next file only after closing this one
    jobs = []
    prev_end: float | None = None
    for idx, path in files:
        entry = listed.get(path.name)
        if entry is not None:
            start, end = spawn_time + entry[0], spawn_time + entry[1]
            if idx == 0 and first_wall is not None:
                start = first_wall  # the list starts the first segment at 0, not at its frame
            salvaged = False
        else:  # no list entry: ffmpeg died before finishing this file
            start = prev_end if prev_end is not None else (first_wall or spawn_time)
            end = None
            salvaged = True
        prev_end = end if end is not None else prev_end
        if idx not in skip:
            jobs.append((idx, Job(session_id, camera, path, start, end, salvaged, video_only)))
    return jobs
