"""`check-config` for an interview station: what the schema cannot see."""

from __future__ import annotations

import shutil

from agent.config.loader import AgentConfig


def interview_problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    icfg = cfg.interview
    problems: list[tuple[str, str]] = []
    if not icfg.cameras:
        problems.append(
            (
                "interview.cameras",
                'station.role is "interview": add at least one '
                "[[interview.cameras]] with an id and a video source",
            )
        )
    for i, cam in enumerate(icfg.cameras):
        if cam.audio is None and icfg.microphone is None:
            problems.append(
                (
                    f"interview.cameras.{i}.audio",
                    f"camera {cam.id} has no sound source: set "
                    "interview.microphone, or audio for this camera (`camera` for its own track)",
                )
            )
    if shutil.which(icfg.ffmpeg) is None:
        problems.append(
            (
                "interview.ffmpeg",
                f"{icfg.ffmpeg!r} not found: only video would be recorded "
                "(OpenCV fallback, no sound); install Debian's ffmpeg package",
            )
        )
    if shutil.which(icfg.ffprobe) is None:
        problems.append(("interview.ffprobe", f"{icfg.ffprobe!r} not found (Debian's ffmpeg)"))
    if icfg.font is not None and not icfg.font.is_file():
        problems.append(("interview.font", f"{icfg.font} does not exist"))
    if icfg.segment_seconds <= icfg.gap_seconds:
        problems.append(("interview.segment_seconds", "must be longer than interview.gap_seconds"))
    return problems
