"""Simulated IP camera: MJPEG over HTTP on 127.0.0.1 with synthetic frames and a moving clock.

Like a real network camera it encodes each frame once and hands the newest frame to every
client; a client that reads too slowly misses frames (counted in `skipped_frames`), it never
gets a backlog. Each frame shows the camera name, the wall-clock time to the millisecond and a
frame counter, so a recording of it proves which moments it holds. States (HttpSource):
frozen repeats the last picture, stalled sends nothing on open connections, dropped refuses
connections, black sends black frames (lens covered).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial

import numpy as np

from simulators.avsource import STATES, HttpSource

BOUNDARY = "evidenceframe"


class CameraSim(HttpSource):
    content_type = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    path = "/video.mjpg"

    def __init__(
        self,
        name: str = "cam1",
        width: int = 320,
        height: int = 240,
        fps: float = 10.0,
        port: int = 0,
        quality: int = 80,
    ) -> None:
        super().__init__(name, port)
        if width < 64 or height < 64:
            raise ValueError(f"camera {name}: frame size must be at least 64x64")
        if not 0 < fps <= 60:
            raise ValueError(f"camera {name}: fps must be in (0, 60]")
        self.width, self.height, self.fps, self.quality = width, height, fps, quality
        self.black = False
        self.frames_made = 0
        self.frames_sent = 0  # summed over clients
        self.skipped_frames = 0  # frames a client was too slow to take
        self._frame: tuple[int, bytes] = (0, b"")
        self._cond = threading.Condition()
        self._bg = self._background()
        self._producer: threading.Thread | None = None

    def start(self) -> CameraSim:
        super().start()
        self._producer = threading.Thread(
            target=self._produce, name=f"sim-{self.name}-frames", daemon=True
        )
        self._producer.start()
        return self

    def set_state(self, state: str) -> None:
        if state == "black":
            self.black = True
            state = "live"
        elif state in ("live", "return"):
            self.black = False
        if state not in (*STATES, "return"):
            raise ValueError(
                f"{self.name}: unknown state {state!r} (live, frozen, stalled, dropped, black)"
            )
        super().set_state(state)

    # --- frames ----------------------------------------------------------------------------

    def _background(self) -> np.ndarray:
        y = np.linspace(40, 160, self.height, dtype=np.uint8)[:, None]
        x = np.linspace(60, 200, self.width, dtype=np.uint8)[None, :]
        img = np.zeros((self.height, self.width, 3), np.uint8)
        img[..., 0] = y
        img[..., 1] = x
        img[..., 2] = 90
        return img

    def render(self, n: int, now: float) -> bytes:
        import cv2

        if self.black:
            img = np.zeros((self.height, self.width, 3), np.uint8)
        else:
            img = self._bg.copy()
            # A box sweeping across the picture: motion a frozen-picture detector must see.
            size = max(8, self.height // 6)
            span = max(1, self.width - size)
            x = int((n * 4) % (2 * span))
            x = x if x < span else 2 * span - x
            y = self.height // 2 - size // 2
            cv2.rectangle(img, (x, y), (x + size, y + size), (255, 255, 255), -1)
            stamp = datetime.fromtimestamp(now).strftime("%H:%M:%S.%f")[:-3]
            scale = self.height / 360
            thick = max(1, int(scale * 2))
            cv2.putText(
                img,
                f"{self.name} {stamp} #{n}",
                (8, self.height - 12),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (255, 255, 255),
                thick,
                cv2.LINE_AA,
            )
        ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - imencode of a valid array does not fail
            raise RuntimeError("JPEG encoding failed")
        return jpg.tobytes()

    def _produce(self) -> None:
        for tick in self.paced(1.0 / self.fps):
            if self.state in ("dropped", "stalled") or not self._clients:
                continue  # nobody to serve: a real camera's encoder idles too
            if self.state == "frozen" and self._frame[1]:
                self._publish(self._frame[1])  # the same bytes again: a stuck picture
                continue
            self._publish(self.render(tick, time.time()))
        with self._cond:
            self._cond.notify_all()

    def _publish(self, jpg: bytes) -> None:
        with self._cond:
            self.frames_made += 1
            self._frame = (self.frames_made, jpg)
            self._cond.notify_all()

    def paced(self, interval: float) -> Iterator[int]:
        # The producer keeps running across drops (HttpSource.paced stops on `dropped`).
        start = time.monotonic()
        tick = 0
        while not self._stop.is_set():
            yield tick
            tick += 1
            due = start + tick * interval
            lag = time.monotonic() - due
            if lag > interval:  # the machine was busy: skip ticks instead of bursting
                tick += int(lag / interval)
                due = start + tick * interval
            time.sleep(max(0.0, due - time.monotonic()))

    def _newer_than(self, seq: int) -> bool:
        return self._frame[0] != seq or self._stop.is_set()

    def stream(self) -> Iterator[bytes]:
        last = self._frame[0]
        while not self._stop.is_set() and self.state != "dropped":
            with self._cond:
                self._cond.wait_for(partial(self._newer_than, last), timeout=0.5)
                seq, jpg = self._frame
            if seq == last or self.state == "stalled":
                yield b""
                continue
            if last and seq > last + 1:
                self.skipped_frames += seq - last - 1
            last = seq
            self.frames_sent += 1
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
            ).encode("ascii")
            yield head + jpg + b"\r\n"
