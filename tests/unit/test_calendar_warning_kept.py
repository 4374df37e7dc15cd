"""The 调休 warning is computed by the daemon's compliance loop and kept for today; readers
such as `status` take it from the ledger instead of loading the holiday tables again."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from agent.compliance.calendar_check import KV_KEY, station_warning


def test_the_daemons_answer_for_today_is_what_readers_get(make_station) -> None:  # type: ignore[no-untyped-def]
    ctx = make_station().context()
    december = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    computed = station_warning(ctx, december, keep=True)  # the compliance loop
    stored = json.loads(ctx.ledger.get_kv(KV_KEY) or "{}")
    assert stored == {"date": "2026-12-03", "warning": computed}
    # A reader takes the stored answer for that day (shown here by a marked one) ...
    with ctx.ledger.tx() as conn:
        mark = {"date": "2026-12-03", "warning": "kept by the daemon"}
        ctx.ledger.set_kv(conn, KV_KEY, json.dumps(mark))
    assert station_warning(ctx, december) == "kept by the daemon"
    # ... and computes it itself on another day, or when nothing valid is stored.
    assert station_warning(ctx, datetime(2026, 12, 4, 4, 0, tzinfo=UTC)) == computed
    with ctx.ledger.tx() as conn:
        ctx.ledger.set_kv(conn, KV_KEY, "not json")
    assert station_warning(ctx, december) == computed
    # In July there is nothing to warn about, whatever is stored for another day.
    assert station_warning(ctx, datetime(2026, 7, 1, 4, 0, tzinfo=UTC), keep=True) is None
