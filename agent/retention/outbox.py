"""Bounded outbox: while the broker is away (or MQTT is off) events wait in the ledger, up to
`mqtt.outbox_max_events`; beyond that the oldest droppable ones go.

Delivered events are deleted on PUBACK by the drainer (agent.mqtt.outbox), so only the
undelivered ones can pile up. A drop is never silent: the kv counter `outbox.dropped` grows and
a custody event `outbox.dropped` (how many, which types, which sequence numbers) is appended in
the same transaction. Events an auditor must see are never dropped: `integrity.*`,
`deadline.*` and `archive.failed` (PROTECTED), even when they alone exceed the cap.
"""

from __future__ import annotations

import logging
from collections import Counter

from agent.ledger import custody, events
from agent.station.context import Context

logger = logging.getLogger(__name__)

BATCH = 5000  # rows dropped per transaction, so a huge backlog never holds the lock long
is_protected = events.is_protected  # integrity.*, deadline.*, archive.failed: never dropped


def dropped(ctx: Context) -> int:
    return int(ctx.ledger.get_kv("outbox.dropped") or 0)


def enforce_cap(ctx: Context) -> int:
    """Drop the oldest droppable events beyond the cap; returns how many were dropped."""
    cap = ctx.cfg.mqtt.outbox_max_events
    total = 0
    while True:
        n = _drop_batch(ctx, cap)
        total += n
        if n < BATCH:
            break
    if total:
        logger.warning(
            "MQTT outbox over mqtt.outbox_max_events=%d: dropped the %d oldest undelivered"
            " events (integrity, deadline and archive.failed events are kept); is the broker"
            " reachable?",
            cap,
            total,
        )
    return total


def _drop_batch(ctx: Context, cap: int) -> int:
    with ctx.ledger.tx() as conn:
        row = conn.execute("SELECT n FROM ledger_counters WHERE name = 'outbox'").fetchone()
        excess = min((int(row[0]) if row else 0) - cap, BATCH)
        if excess <= 0:
            return 0
        rows = events.drop_oldest_droppable(conn, excess)
        if not rows:
            return 0  # only protected events left: they stay, whatever the cap
        seqs = [seq for seq, _ in rows]
        before = int(ctx.ledger.get_kv("outbox.dropped") or 0)
        ctx.ledger.set_kv(conn, "outbox.dropped", str(before + len(seqs)))
        custody.append(
            conn,
            "outbox.dropped",
            {
                "count": len(seqs),
                "first_seq": seqs[0],
                "last_seq": seqs[-1],
                "types": dict(sorted(Counter(type_ for _, type_ in rows).items())),
                "cap": cap,
                "reason": "mqtt.outbox_max_events reached while events were undelivered",
            },
        )
        return len(seqs)
