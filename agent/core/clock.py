"""Time helpers: one injectable clock and ISO-8601 formatting with an offset everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def now() -> datetime:
    """The current time, aware, in UTC. Tests replace `agent.core.clock.now` to compress time."""
    return datetime.now(UTC)


def now_iso() -> str:
    """The current time as stored in the ledger (ISO-8601, UTC offset); the one such helper."""
    return now().isoformat()


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 with offset (aware datetimes only), or None."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        raise ValueError("naive datetime cannot be formatted with an offset")
    return dt.isoformat()


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text)


def local(dt: datetime, tz: str) -> datetime:
    return dt.astimezone(ZoneInfo(tz))


def from_local_naive(naive: datetime, tz: str) -> datetime:
    """Recorder clocks and FAT/exFAT mtimes carry no offset: they are station-local time."""
    return naive.replace(tzinfo=ZoneInfo(tz))


def from_mtime_ns(mtime_ns: int) -> datetime:
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC)
