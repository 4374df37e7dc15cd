"""Video-only capture with OpenCV, for a station where ffmpeg is missing. Degraded on purpose
and said so loudly: no sound (the session's coverage counts that as a gap throughout), an ASCII
overlay (OpenCV's fonts have no Chinese), MPEG-4 Part 2 in MPEG-TS.

It behaves like an ffmpeg run to the camera loop: the same segment file names and CSV segment
list (times relative to the spawn second), the same ProcessReport, pictures for the watcher.
Frames are written on a fixed clock at the camera's configured rate, repeating the newest
picture, so a file's playing time stays its wall-clock time even when the camera's rate wanders.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from agent.interview import ffcmd
from agent.interview.ffproc import ProcessReport

logger = logging.getLogger(__name__)

WARNING = (
    "ffmpeg is not installed (interview.ffmpeg): recording VIDEO ONLY with OpenCV - NO SOUND, "
    "no Chinese overlay. Install Debian's ffmpeg package to record the interview properly."
)


def ascii_text(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only: keep what they can, mark the rest as '?'."""
    plain = unicodedata.normalize("NFKC", text)
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in plain)


class OpencvCapture:
    def __init__(
        self,
        url: str,
        run_dir: Path,
        spawn_time: float,
        fps: float,
        segment_seconds: float,
        label: str,
        tz: str,
        timeout_s: float,
        on_picture: Callable[[np.ndarray, float], None],
        monitor_fps: float,
    ) -> None:
        self.url = url
        self.run_dir = run_dir
        self.spawn_time = spawn_time
        self.fps = fps
        self.segment_seconds = segment_seconds
        self.label = ascii_text(label)
        self.tz = ZoneInfo(tz)
        self.timeout_ms = int(timeout_s * 1000)
        self.on_picture = on_picture
        self.monitor_every = 1.0 / monitor_fps
        self.report = ProcessReport()
        self._stop = threading.Event()
        self._latest: tuple[np.ndarray, float] | None = None
        self._reader_done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rc: int | None = None

    @property
    def pid(self) -> int | None:
        return None

    def start(self) -> None:
        for target, name in ((self._read, "read"), (self._write, "write")):
            t = threading.Thread(target=target, name=f"cv-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def poll(self) -> int | None:
        return self._rc

    def stop(self, timeout: float = 10.0) -> int | None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        return self._rc

    # --- reading ---------------------------------------------------------------------------

    def _read(self) -> None:
        import cv2

        # A device node goes through V4L2; URLs through OpenCV's own (bundled) FFmpeg.
        api = cv2.CAP_V4L2 if self.url.startswith("/dev/") else cv2.CAP_FFMPEG
        cap = cv2.VideoCapture(
            self.url,
            api,
            [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                self.timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                self.timeout_ms,
            ],
        )
        try:
            if not cap.isOpened():
                self.report.input_error[0] = f"OpenCV cannot open {self.url}"
                return
            last_monitor = 0.0
            while not self._stop.is_set():
                ok, bgr = cap.read()
                now = time.time()
                if not ok:
                    self.report.input_error[0] = "OpenCV read failed (stream ended or timed out)"
                    return
                r = self.report
                if r.first_picture is None:
                    r.first_picture = now
                    r.input_start[0] = now
                r.last_picture = now
                self._latest = (bgr, now)
                if now - last_monitor >= self.monitor_every:
                    last_monitor = now
                    r.pictures += 1
                    self.on_picture(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), now)
        finally:
            cap.release()
            self._reader_done.set()

    # --- writing ---------------------------------------------------------------------------

    def _write(self) -> None:
        try:
            self._write_segments()
        except Exception as exc:  # noqa: BLE001 - reported like an ffmpeg write error
            logger.exception("OpenCV fallback: writing segments failed")
            self.report.output_error = f"OpenCV writer: {exc}"
        finally:
            self._rc = 0 if self.report.output_error is None else 1

    def _write_segments(self) -> None:
        while self._latest is None:
            if self._stop.is_set() or self._reader_done.is_set():
                return
            time.sleep(0.02)
        index = 0
        with open(self.run_dir / ffcmd.SEGMENT_LIST, "a", encoding="utf-8") as listing:
            while not (self._stop.is_set() or self._reader_done.is_set()):
                name = ffcmd.SEGMENT_PATTERN % index
                start, end = self._write_one(self.run_dir / name)
                rel = (start - self.spawn_time, end - self.spawn_time)
                listing.write(f"{name},{rel[0]:.6f},{rel[1]:.6f}\n")
                listing.flush()
                index += 1

    def _write_one(self, path: Path) -> tuple[float, float]:
        import cv2

        assert self._latest is not None
        frame, first_t = self._latest
        h, w = frame.shape[:2]
        writer = cv2.VideoWriter(
            str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h)
        )
        if not writer.isOpened():
            raise OSError(f"cannot open {path} for writing")
        start = first_t
        interval = 1.0 / self.fps
        n = 0
        try:
            while not (self._stop.is_set() or self._reader_done.is_set()):
                frame, t = self._latest
                if frame.shape[:2] != (h, w):
                    break  # the camera changed its size: a new file
                writer.write(self._overlay(frame.copy()))
                n += 1
                if n * interval >= self.segment_seconds:
                    break
                time.sleep(max(0.0, start + n * interval - time.time()))
        finally:
            writer.release()
        return start, start + n * interval

    def _overlay(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        stamp = datetime.now(self.tz).strftime("%Y-%m-%d %H:%M:%S")
        scale = max(0.4, frame.shape[0] / 720)
        for i, text in enumerate((self.label, stamp)):
            y = int(24 * scale * (i + 1)) + 6
            cv2.putText(
                frame, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA
            )
            cv2.putText(
                frame,
                text,
                (8, y),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
        return frame
