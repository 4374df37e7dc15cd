"""Bandwidth windows and the token bucket that enforces the cap."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agent.archive.throttle import ThrottledBody, TokenBucket, current_limit, seconds_until_change
from agent.config.archive import ArchiveConfig, BandwidthWindow

TZ = ZoneInfo("Asia/Shanghai")


def _cfg() -> ArchiveConfig:
    return ArchiveConfig(
        bandwidth_bytes_per_s=None,
        bandwidth_windows=[
            BandwidthWindow(
                start="08:00", end="18:00", days=[1, 2, 3, 4, 5], bytes_per_s=2_500_000
            ),
            BandwidthWindow(start="22:00", end="06:00", days=[5], bytes_per_s=0),
        ],
    )


@pytest.mark.parametrize(
    ("when", "limit"),
    [
        (datetime(2026, 11, 23, 9, 30, tzinfo=TZ), 2_500_000),  # Monday office hours
        (datetime(2026, 11, 23, 18, 0, tzinfo=TZ), None),  # end is exclusive
        (datetime(2026, 11, 22, 9, 30, tzinfo=TZ), None),  # Sunday: not in the window
        (datetime(2026, 11, 27, 23, 0, tzinfo=TZ), 0),  # Friday night: paused
        (datetime(2026, 11, 28, 5, 59, tzinfo=TZ), 0),  # ... across midnight into Saturday
        (datetime(2026, 11, 29, 5, 59, tzinfo=TZ), None),  # Sunday morning: Saturday has none
    ],
)
def test_limit_by_window(when: datetime, limit: int | None) -> None:
    assert current_limit(_cfg(), when) == limit


def test_seconds_until_change() -> None:
    assert seconds_until_change(_cfg(), datetime(2026, 11, 23, 17, 58, 30, tzinfo=TZ)) == 90
    assert seconds_until_change(_cfg(), datetime(2026, 11, 22, 12, 0, tzinfo=TZ), 600) == 600


def test_bad_window_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        BandwidthWindow(start="8am", end="18:00", bytes_per_s=1)
    with pytest.raises(ValueError, match="weekdays"):
        BandwidthWindow(start="08:00", end="18:00", days=[0], bytes_per_s=1)


def test_token_bucket_caps_the_rate() -> None:
    bucket = TokenBucket(400_000)
    body = ThrottledBody(b"x" * 1_000_000, bucket)
    start = time.monotonic()
    got = b""
    while chunk := body.read(64 << 10):
        got += chunk
    elapsed = time.monotonic() - start
    assert got == b"x" * 1_000_000
    assert 1.2 < elapsed < 3.5  # ~ (1 MB - 1 s of burst) / 400 kB/s
    body.seek(0)
    assert body.tell() == 0 and len(body) == 1_000_000


def test_unlimited_and_paused_bucket() -> None:
    stop = threading.Event()
    bucket = TokenBucket(None, stop)
    bucket.acquire(1 << 30)  # unlimited: returns at once
    bucket.set_rate(0)
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(InterruptedError):
        bucket.acquire(10)  # paused until stopped
