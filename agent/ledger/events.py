"""Operational events (`evidence/<station>/events`) written to the ledger outbox.

An event is inserted in the same transaction as the state change that caused it, so it can
neither be lost (crash after commit: it is in the outbox) nor invented (rollback removes it).
The MQTT publisher drains the outbox and deletes a row only after PUBACK (`mark_delivered`);
the outbox cap drops the oldest droppable undelivered rows (`drop_oldest_droppable`). This
module holds all the SQL that writes the outbox; its callers keep their policy (when to drop,
what to count, which custody event records it).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from agent.core import clock
from agent.core.ids import uuid7
from agent.core.wiretime import localize

# Events an auditor must see are never dropped by the cap: `integrity.*`, `deadline.*` and
# `archive.failed` (a literal predicate: the drop reads the outbox by rowid and skips these).
PROTECTED_SQL = (
    "type NOT LIKE 'integrity.%' AND type NOT LIKE 'deadline.%' AND type != 'archive.failed'"
)

SCHEMA = 2  # event payload version (2: `schema` and `station` added, times in station zone)

logger = logging.getLogger(__name__)


def emit(conn: sqlite3.Connection, type_: str, **fields: Any) -> str:
    if not conn.in_transaction:
        raise RuntimeError("events.emit must run inside a ledger transaction")
    event_id = uuid7()
    # Created on the station's clock and with its id (Ledger.identify), never re-stamped later.
    tz = getattr(conn, "timezone", "UTC")
    at = clock.iso(clock.local(clock.now(), tz)) or ""
    station = getattr(conn, "station", None)
    head = {"schema": SCHEMA, "id": event_id, "type": type_, "at": at}
    payload = {**head, **localize(fields, tz), **({"station": station} if station else {})}
    conn.execute(
        "INSERT INTO outbox(id, type, at, payload) VALUES(?,?,?,?)",
        (event_id, type_, at, json.dumps(payload, ensure_ascii=False, sort_keys=True)),
    )
    logger.debug("event %s %s", type_, fields)
    return event_id


def is_protected(type_: str) -> bool:
    """Whether an event of `type_` is kept whatever the cap (the rule of PROTECTED_SQL)."""
    return type_.startswith(("integrity.", "deadline.")) or type_ == "archive.failed"


def mark_delivered(conn: sqlite3.Connection, seqs: list[int]) -> None:
    """The broker acknowledged these rows (PUBACK): they leave the outbox."""
    conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])


def drop_oldest_droppable(conn: sqlite3.Connection, limit: int) -> list[tuple[int, str]]:
    """Delete up to `limit` of the oldest undelivered unprotected rows; returns (seq, type)."""
    rows = conn.execute(
        f"SELECT seq, type FROM outbox WHERE seq > 0 AND {PROTECTED_SQL} ORDER BY seq LIMIT ?",
        (limit,),
    ).fetchall()
    if not rows:
        return []
    first, last = int(rows[0][0]), int(rows[-1][0])
    conn.execute("DELETE FROM outbox WHERE seq >= ? AND seq <= ? AND " + PROTECTED_SQL,
                 (first, last))  # fmt: skip
    return [(int(r[0]), str(r[1])) for r in rows]
