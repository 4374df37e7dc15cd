"""Sealed sources that failed authentication, as the custody chain records them (reads only).

agent.ingest.sealbroken holds a recording whose sealed interview segment fails authentication
in its volume and records one `integrity.violation` whose custody payload carries
`check: "sealed_source"`, the segment and the chunk. `verify` lists them from here: the
finding stays in custody whatever happens to the row.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.ledger import integrity

CHECK = "sealed_source"  # the `check` field of the integrity.violation custody payload


def findings(conn: sqlite3.Connection) -> list[tuple[str, dict[str, Any]]]:
    """Every recorded sealed-source failure: (recording id, custody payload), oldest first."""
    return integrity.findings(conn, CHECK)


def describe(rid: str, doc: dict[str, Any]) -> str:
    """One line naming the segment, its recorder and the chunk that failed."""
    chunk = doc.get("chunk")
    where = "its envelope header" if chunk is None else f"chunk {chunk}"
    return (
        f"recording {rid}: sealed segment {doc.get('segment')} on {doc.get('serial')} failed "
        f"authentication at {where} when ingest read it; no copy was kept, the segment stays "
        "in its volume (held: quarantined, never wiped)"
    )
