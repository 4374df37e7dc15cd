"""`integrity.violation`: a stored copy that no longer matches its SHA-256, or is gone.

The one emitter of the event. Each check reports where it runs (the archive audit, an export
that re-reads a copy, the spool sweep), and the report is a custody event plus an outbox event
in the caller's transaction, so neither exists without the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from agent.ledger import custody, events


def report_violation(
    conn: sqlite3.Connection,
    rid: str,
    where: str,
    detail: Mapping[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Record that recording `rid`'s `where` copy (spool, archive, ...) failed its check.

    `detail` goes into the custody event only (paths, references, digests); `fields` are extra
    fields of the MQTT event (which always carries `recording` and `where`).
    """
    custody.append(
        conn, "integrity.violation", {"where": where, **(detail or {})}, recording_id=rid
    )
    events.emit(conn, "integrity.violation", recording=rid, where=where, **fields)
