"""The upload backlog and its estimated drain time, for `status --json` and MQTT station state.

Read from the ledger only (no store access), so any process can ask: recordings waiting for
the archive, their bytes (less parts already stored by open multipart uploads), the oldest
deadline among them, the cap in force now and the measured upload rate.
"""

from __future__ import annotations

from typing import Any

from agent.archive.throttle import current_limit
from agent.core import clock
from agent.station.context import Context


def archive_backlog(ctx: Context) -> dict[str, Any]:
    ledger = ctx.ledger
    row = ledger.one(
        "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes, MIN(deadline) AS oldest,"
        " SUM(archive_error IS NOT NULL) AS failing FROM recordings WHERE state='spooled'"
    )
    stored = ledger.one(
        "SELECT COALESCE(SUM(p.size), 0) FROM archive_parts p"
        " JOIN archive_uploads u ON u.upload_id = p.upload_id"
        " JOIN recordings r ON r.id = u.recording_id"
        " WHERE u.state = 'open' AND r.state = 'spooled'"
    )
    assert row is not None and stored is not None
    remaining = max(int(row["bytes"]) - int(stored[0]), 0)
    limit = current_limit(ctx.cfg.archive, clock.local(clock.now(), ctx.cfg.station.timezone))
    measured = float(ledger.get_kv("archive.rate_bps") or 0) or None
    rate = measured if limit is None else min(measured or limit, limit)
    eta: float | None
    if remaining == 0:
        eta = 0.0
    elif rate:
        eta = round(remaining / rate, 1)
    else:
        eta = None  # paused, or no upload measured yet
    return {
        "recordings": int(row["n"]),
        "bytes": remaining,
        "oldest_deadline": row["oldest"],
        "failing": int(row["failing"] or 0),
        "limit_bytes_per_s": limit,
        "paused": limit == 0,
        "rate_bytes_per_s": None if measured is None else round(measured),
        "estimated_drain_seconds": eta,
        "store": ctx.cfg.archive_url.split("://", 1)[0],
        "last_error": ledger.get_kv("archive.last_error"),
    }
