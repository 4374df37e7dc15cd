"""How a camera run captures: ffmpeg (audio + video segments) or, without ffmpeg, OpenCV.

The service hands a `CaptureFactory` to each camera run; the run calls it for every (re)start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config.interview import InterviewConfig
from agent.interview import ffcmd
from agent.interview.fallback import OpencvCapture
from agent.interview.ffproc import FfmpegProcess
from agent.interview.runs import Capture
from agent.rules import sources

if TYPE_CHECKING:
    from agent.interview.camera import CameraRun


class CaptureFactory:
    def __init__(
        self, icfg: InterviewConfig, room: str, timezone: str, ffmpeg: str | None, font: Path | None
    ) -> None:
        self.icfg = icfg
        self.room = room
        self.timezone = timezone
        self.ffmpeg = ffmpeg
        self.font = font

    def __call__(self, run: CameraRun, run_dir: Path, overlay: Path, spawn: float) -> Capture:
        cam = run.cam
        if self.ffmpeg is None:
            return OpencvCapture(
                run.video.target,
                run_dir,
                spawn,
                cam.fps,
                self.icfg.segment_seconds,
                f"{self.room} {cam.name or cam.id}",
                self.timezone,
                self.icfg.read_timeout_seconds,
                run.on_picture,
                self.icfg.monitor_fps,
            )
        ffmpeg = self.ffmpeg
        inputs = ffcmd.Inputs(run.video, run.audio)

        def argv(audio_fd: int, progress_fd: int) -> list[str]:
            return ffcmd.build(
                self.icfg,
                cam,
                inputs,
                run_dir,
                overlay,
                self.font,
                spawn,
                ffmpeg,
                audio_fd,
                progress_fd,
            )

        env = dict(os.environ, TZ=self.timezone, AV_LOG_FORCE_NOCOLOR="1")
        audio_target = None if run.audio is None or run.audio.kind == "camera" else run.audio.target
        return FfmpegProcess(
            argv,
            env,
            cam.id,
            (run.video.target, audio_target),
            run.on_picture,
            run.on_sound,
            audio_first=audio_target is not None,
        )


def audio_source(text: str, video: str) -> sources.Source:
    if text.strip().lower() == "camera":
        return sources.Source("camera", video)
    return sources.parse(text)
