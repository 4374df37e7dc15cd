"""`integrity.violation`: a stored copy that no longer matches its SHA-256, or is gone.

The one emitter of the event. Each check reports where it runs (the archive audit, an export
that re-reads a copy, the spool sweep), and the report is a custody event plus an outbox event
in the caller's transaction, so neither exists without the other.
"""

from __future__ import annotations

import json
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


def findings(conn: sqlite3.Connection, check: str) -> list[tuple[str, dict[str, Any]]]:
    """Every recorded violation whose custody payload carries `check` (a re-copy mismatch, a
    sealed source that failed): (recording id, payload), oldest first. Custody keeps them
    whatever happens to the row."""
    return [
        (str(r["recording_id"]), parsed(r["payload"]))
        for r in conn.execute(
            "SELECT recording_id, payload FROM custody WHERE type = 'integrity.violation'"
            " AND json_extract(payload, '$.check') = ? ORDER BY seq",
            (check,),
        )
    ]


def finding_of(conn: sqlite3.Connection, rid: str, check: str) -> dict[str, Any] | None:
    """The newest violation of `rid` carrying `check` (custody payload), or None."""
    row = conn.execute(
        "SELECT payload FROM custody WHERE recording_id = ? AND type = 'integrity.violation'"
        " AND json_extract(payload, '$.check') = ? ORDER BY seq DESC LIMIT 1",
        (rid, check),
    ).fetchone()
    return None if row is None else parsed(row["payload"])


def parsed(text: str) -> dict[str, Any]:
    """A custody payload as a dict ({} if it is not a JSON object)."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
