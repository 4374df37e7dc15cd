"""OpenCV's eye on the live picture (frozen, black) and an ear on the sound (dead microphone).

The pictures are the camera's own, taken before the overlay is drawn: the overlay's running
clock would make a frozen camera look alive. A condition becomes a gap only once it has lasted
`interview.gap_seconds`; its start is when it began, not when it was noticed.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from agent.core import envelope

logger = logging.getLogger(__name__)


class PictureWatch:
    def __init__(self, black_level: float, freeze_diff: float) -> None:
        self.black_level = black_level
        self.freeze_diff = freeze_diff
        self._lock = threading.Lock()
        self._prev: np.ndarray | None = None
        self._prev_t = 0.0
        self.black_since: float | None = None
        self.frozen_since: float | None = None
        self.latest: np.ndarray | None = None  # RGB
        self.latest_t = 0.0
        self.mean_level = 0.0

    def feed(self, rgb: np.ndarray, t: float) -> None:
        import cv2  # lazy: keeps the daemon's start-up small on dock stations

        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        level = float(gray.mean())
        with self._lock:
            black = level < self.black_level
            self.black_since = (self.black_since or t) if black else None
            if self._prev is not None and self._prev.shape == gray.shape:
                diff = float(cv2.absdiff(gray, self._prev).mean())
                if diff < self.freeze_diff and not black:
                    # Frozen since the first of the identical pictures, i.e. the previous one.
                    self.frozen_since = self.frozen_since or self._prev_t
                else:
                    self.frozen_since = None
            self._prev, self._prev_t = gray, t
            self.latest, self.latest_t = rgb, t
            self.mean_level = level

    def conditions(self, now: float, threshold: float) -> dict[str, float]:
        """Picture problems that have lasted `threshold` seconds: kind -> since."""
        out = {}
        with self._lock:
            if self.black_since is not None and now - self.black_since >= threshold:
                out["black"] = self.black_since
            if self.frozen_since is not None and now - self.frozen_since >= threshold:
                out["frozen"] = self.frozen_since
        return out

    def write_thumbnail(self, path: Path, seal: envelope.Recipients | None = None) -> bool:
        """The latest picture as JPEG, replaced atomically (readers never see half a file);
        with `seal` (a station that encrypts its copies) the JPEG is an envelope, never in
        clear on disk."""
        import cv2

        with self._lock:
            rgb = self.latest
        if rgb is None:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            return False
        data = jpg.tobytes()
        tmp.write_bytes(data if seal is None else envelope.seal_bytes(seal, data))
        os.replace(tmp, path)
        return True


class SoundWatch:
    def __init__(self, silence_dbfs: float) -> None:
        self.silence_dbfs = silence_dbfs
        self.silent_since: float | None = None
        self.level = float("-inf")

    def feed(self, level_dbfs: float, t: float) -> None:
        self.level = level_dbfs
        if level_dbfs < self.silence_dbfs:
            self.silent_since = self.silent_since or t
        else:
            self.silent_since = None

    def conditions(self, now: float, threshold: float) -> dict[str, float]:
        since = self.silent_since
        if since is not None and now - since >= threshold:
            return {"no_sound": since}
        return {}
