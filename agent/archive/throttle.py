"""Upload bandwidth: the cap in force now (time windows) and a token bucket that enforces it.

The cap is shared by all parts in flight, so `parallel_parts` never multiplies it. Bodies are
handed to the HTTP layer as a `ThrottledBody`, which takes tokens per block as the socket
reads it: the link sees a steady rate instead of part-sized bursts at line speed, which is
what an office network with a 20 Mbit/s cap needs.
"""

from __future__ import annotations

import io
import threading
import time
from datetime import datetime, timedelta

from agent.config.archive import ArchiveConfig, BandwidthWindow


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _in_window(w: BandwidthWindow, local: datetime) -> bool:
    start, end = _minutes(w.start), _minutes(w.end)
    t = local.hour * 60 + local.minute
    day = local.isoweekday()
    if start <= end:
        return day in w.days and start <= t < end
    # Across midnight: the part after midnight belongs to the window that began the day before.
    if t >= start:
        return day in w.days
    yesterday = (local - timedelta(days=1)).isoweekday()
    return t < end and yesterday in w.days


def current_limit(cfg: ArchiveConfig, local: datetime) -> int | None:
    """Bytes/s allowed at local time `local`: None = unlimited, 0 = paused."""
    for w in cfg.bandwidth_windows:
        if _in_window(w, local):
            return w.bytes_per_s
    return cfg.bandwidth_bytes_per_s


def seconds_until_change(cfg: ArchiveConfig, local: datetime, horizon_s: float = 3600) -> float:
    """Seconds (minute resolution) until the cap differs from now's, at most `horizon_s`."""
    now_limit = current_limit(cfg, local)
    step = 60 - local.second
    waited = 0.0
    t = local
    while waited < horizon_s:
        t = t + timedelta(seconds=step)
        waited += step
        step = 60
        if current_limit(cfg, t) != now_limit:
            return waited
    return horizon_s


class TokenBucket:
    """Thread-safe token bucket; `rate` may change at any time (None = unlimited)."""

    def __init__(self, rate: int | None, stop: threading.Event | None = None) -> None:
        self._lock = threading.Lock()
        self._rate = rate
        self._tokens = 0.0
        self._last = time.monotonic()
        self.stop = stop or threading.Event()

    @property
    def rate(self) -> int | None:
        return self._rate

    def set_rate(self, rate: int | None) -> None:
        with self._lock:
            self._refill()
            self._rate = rate

    def _refill(self) -> None:
        now = time.monotonic()
        if self._rate:
            # At most one second of burst, so a pause never banks a flood.
            self._tokens = min(float(self._rate), self._tokens + (now - self._last) * self._rate)
        self._last = now

    def acquire(self, n: int) -> None:
        """Block until `n` bytes may be sent (returns at once when unlimited)."""
        while True:
            with self._lock:
                if self._rate is None:
                    return
                self._refill()
                if self._rate > 0 and self._tokens >= min(n, self._rate):
                    self._tokens -= n
                    return
                wait = 0.5 if not self._rate else (min(n, self._rate) - self._tokens) / self._rate
            if self.stop.wait(min(max(wait, 0.001), 0.5)):
                raise InterruptedError("upload stopped")


class ThrottledBody(io.RawIOBase):
    """A seekable read-only view of `data` that takes tokens from `bucket` per read."""

    BLOCK = 64 << 10

    def __init__(self, data: bytes, bucket: TokenBucket) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._bucket = bucket

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._data)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = max(0, min(len(self._data), base + offset))
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = len(self._data) - self._pos
        size = min(size, self.BLOCK, len(self._data) - self._pos)
        if size <= 0:
            return b""
        self._bucket.acquire(size)
        chunk = bytes(self._data[self._pos : self._pos + size])
        self._pos += size
        return chunk

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)
