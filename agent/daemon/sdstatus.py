"""The one-line `STATUS=` summary systemd shows in `systemctl status evidence-agent`.

Built from the trigger-kept counters (migration 0009) and the partial index of unmet
deadlines, so sending it every few seconds costs nothing on a ledger with years of history.
"""

from __future__ import annotations

from agent.core import clock
from agent.ledger.status_query import counter, counts_by_state
from agent.station.context import Context

STATUS_SECONDS = 10.0  # how often STATUS= is refreshed when no watchdog interval applies


def status_line(ctx: Context, stale: list[str]) -> str:
    conn = ctx.ledger.connect()
    by_state = counts_by_state(conn)

    def n(state: str) -> int:
        return by_state.get(state, (0, 0))[0]

    docked = conn.execute("SELECT COUNT(*) FROM devices WHERE docked = 1").fetchone()[0]
    overdue = conn.execute(
        "SELECT COUNT(*) FROM recordings WHERE deadline_met_at IS NULL AND deadline IS NOT NULL"
        " AND julianday(deadline) < julianday(?)",
        (clock.iso(clock.now()),),
    ).fetchone()[0]
    parts = [
        f"{docked} docked",
        f"{n('copying')} copying",
        f"{n('discovered')} waiting",
        f"{n('spooled')} to archive",
        f"{n('failed')} failed",
        f"{n('quarantined')} quarantined",
        f"{overdue} deadlines missed",
        f"outbox {counter(conn, 'outbox')}",
    ]
    if stale:
        parts.insert(0, "HUNG: " + ",".join(stale))
    return "; ".join(parts)
