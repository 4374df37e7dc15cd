"""Recorder file-name patterns: serial, officer and start time from a clip's name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from agent.config.loader import NamingPattern


@dataclass(frozen=True)
class NameInfo:
    pattern: str
    serial: str | None
    officer: str | None
    start: datetime | None  # aware
    seq: str | None


@lru_cache(maxsize=64)
def _compile(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def parse_name(name: str, patterns: list[NamingPattern], tz: str) -> NameInfo | None:
    """First pattern that matches `name` (a base name) wins; None if none does."""
    for pat in patterns:
        m = _compile(pat.regex).match(name)
        if not m:
            continue
        groups = m.groupdict()
        start = None
        if groups.get("start"):
            try:
                naive = datetime.strptime(groups["start"], pat.time_format)
            except ValueError:
                continue  # digits that are no valid time: not this pattern
            start = naive.replace(tzinfo=UTC if pat.utc else ZoneInfo(tz))
        return NameInfo(
            pat.name, groups.get("serial"), groups.get("officer"), start, groups.get("seq")
        )
    return None
