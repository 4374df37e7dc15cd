"""When the daemon signs a custody checkpoint: per N events or per interval, not every minute.

Every checkpoint becomes a write-once anchor in the archive, so they must stay countable over
the years a station runs (at most one an hour by default, 8,760 a year, plus one per
`custody.checkpoint_events` on a busy day). A checkpoint is never taken when the head has not
moved. One-shot commands (`ingest DIR`, `export`) and the daemon's stop still sign their own.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from agent.core import clock


def due(conn: sqlite3.Connection, events: int, seconds: float, now: datetime | None = None) -> bool:
    """True when there is no checkpoint yet, or the custody head moved and `events` events or
    `seconds` passed since the last checkpoint."""
    last = conn.execute("SELECT head_seq, at FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
    if last is None:
        return True  # the first one, even of an empty chain (as before: the daemon is up)
    head = conn.execute("SELECT MAX(seq) FROM custody").fetchone()[0] or 0
    if head == last[0]:
        return False
    if head - last[0] >= events:
        return True
    at = clock.parse_iso(last[1])
    return at is None or (now or clock.now()) - at >= timedelta(seconds=seconds)
