"""Sealed sources that failed authentication, as the custody chain records them (reads only).

agent.ingest.sealbroken holds a recording whose sealed interview segment fails authentication
in its volume and records one `integrity.violation` whose custody payload carries
`check: "sealed_source"`, the segment and the chunk. `verify` lists them from here: the
finding stays in custody whatever happens to the row.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

CHECK = "sealed_source"  # the `check` field of the integrity.violation custody payload


def findings(conn: sqlite3.Connection) -> list[tuple[str, dict[str, Any]]]:
    """Every recorded sealed-source failure: (recording id, custody payload), oldest first."""
    out = []
    for r in conn.execute(
        "SELECT recording_id, payload FROM custody WHERE type = 'integrity.violation'"
        " AND json_extract(payload, '$.check') = ? ORDER BY seq",
        (CHECK,),
    ):
        try:
            doc = json.loads(r["payload"])
        except (TypeError, ValueError):
            doc = {}
        out.append((str(r["recording_id"]), doc if isinstance(doc, dict) else {}))
    return out


def describe(rid: str, doc: dict[str, Any]) -> str:
    """One line naming the segment, its recorder and the chunk that failed."""
    chunk = doc.get("chunk")
    where = "its envelope header" if chunk is None else f"chunk {chunk}"
    return (
        f"recording {rid}: sealed segment {doc.get('segment')} on {doc.get('serial')} failed "
        f"authentication at {where} when ingest read it; no copy was kept, the segment stays "
        "in its volume (held: quarantined, never wiped)"
    )
