"""One clock on the wire: every timestamp a station hands out is in `station.timezone`.

The ledger keeps UTC (custody events are hashed with their UTC `at`, and that never
changes). What leaves the station (MQTT payloads, events, `status` and `report` as tables,
JSON and CSV) carries its times in the station's zone with the offset
(`2026-11-22T15:45:58+08:00`), created that way when the payload is built. `localize` does
that for a whole payload: every string that is an ISO-8601 date-time with an offset becomes
the same instant in the station's zone. Signed objects (the custody checkpoint) are never
passed through it, and what an operator typed (case metadata) is kept as typed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")


def local_iso(text: str, tz: str) -> str:
    """`text` (ISO-8601 with offset) as the same instant in `tz`; other text unchanged."""
    if not ISO_WITH_OFFSET.match(text):
        return text
    try:
        return datetime.fromisoformat(text).astimezone(ZoneInfo(tz)).isoformat()
    except ValueError:
        return text


# Values an operator typed (case metadata) are kept exactly as typed and hashed.
AS_TYPED = frozenset({"metadata", "metadata_history", "fields"})


def localize(value: Any, tz: str, keep: frozenset[str] = AS_TYPED) -> Any:
    """A copy of a JSON-like value with every offset timestamp in `tz`; values under the
    keys in `keep` are left exactly as they are."""
    if isinstance(value, str):
        return local_iso(value, tz)
    if isinstance(value, dict):
        return {k: v if k in keep else localize(v, tz, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [localize(v, tz, keep) for v in value]
    return value
