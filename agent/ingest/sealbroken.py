"""A sealed source that fails authentication: an integrity finding, never a copy to retry.

A closed interview segment is sealed in its camera's volume (agent.interview.sealseg) and read
back through its envelope by ingest (agent.core.copier `source_keys`). When a chunk (or the
header) fails authentication, the bytes in the volume are no longer what was sealed: copying
again would give the same answer, so the recording is held, as a re-copy that differs is
(agent.ingest.recopy). In one transaction:

- the recording is `quarantined` with its reason (never retried by the scheduler, never
  archived; the wipe gate only releases `spooled`/`archived` recordings with a verified copy,
  so the segment in the volume is never erased for it, and `accept` refuses a recording that
  has no verified copy);
- one `integrity.violation` (where `recorder`, reason `sealed_source_auth`) names the segment
  and the chunk that failed; `verify` lists it (agent.ledger.sealsource).
"""

from __future__ import annotations

import logging
import sqlite3

from agent.core.errors import SealedSourceError
from agent.ledger import integrity
from agent.ledger import recordings as rec
from agent.ledger.sealsource import CHECK

logger = logging.getLogger(__name__)


def commit(conn: sqlite3.Connection, row: sqlite3.Row, exc: SealedSourceError) -> str:
    """Record the finding on the caller's transaction; returns the recording's reason."""
    rid, serial, segment = str(row["id"]), str(row["serial"]), str(row["source_path"])
    where = "its envelope header" if exc.chunk is None else f"chunk {exc.chunk}"
    reason = (
        f"sealed segment {segment} on {serial} fails authentication at {where}: the file in "
        "the volume is not what was sealed; it is kept there and not copied again "
        "(check the capture disk; `verify` lists it)"
    )
    rec.transition(conn, rid, "quarantined", fields={"reason": reason})
    integrity.report_violation(
        conn,
        rid,
        "recorder",
        {
            "check": CHECK,
            "reason": "sealed source fails authentication",
            "segment": segment,
            "chunk": exc.chunk,
            "error": str(exc),
            "serial": serial,
            "size": int(row["size"]),
        },
        reason="sealed_source_auth",
        segment=segment,
        chunk=exc.chunk,
    )
    logger.error("recording %s: %s", rid, reason)
    return reason
