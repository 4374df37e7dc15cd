"""Operational events (`evidence/<station>/events`) written to the ledger outbox.

An event is inserted in the same transaction as the state change that caused it, so it can
neither be lost (crash after commit: it is in the outbox) nor invented (rollback removes it).
The MQTT publisher drains the outbox and deletes a row only after PUBACK.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from agent.core import clock
from agent.core.ids import uuid7

logger = logging.getLogger(__name__)


def emit(conn: sqlite3.Connection, type_: str, **fields: Any) -> str:
    if not conn.in_transaction:
        raise RuntimeError("events.emit must run inside a ledger transaction")
    event_id = uuid7()
    at = clock.iso(clock.now()) or ""
    payload = {"id": event_id, "type": type_, "at": at, **fields}
    conn.execute(
        "INSERT INTO outbox(id, type, at, payload) VALUES(?,?,?,?)",
        (event_id, type_, at, json.dumps(payload, ensure_ascii=False, sort_keys=True)),
    )
    logger.debug("event %s %s", type_, fields)
    return event_id
