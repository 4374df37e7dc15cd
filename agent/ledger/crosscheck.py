"""The ledger's recordings against their custody events, for `verify`.

A recording's hash and size are written twice in one transaction: into its `recordings` row
and into the custody event that records the copy (`recording.spooled`/`quarantined`, and the
hash again in `recording.archived`). The row can be edited without breaking any chain; the
event cannot. So a swapped spool copy whose row was "fixed" to match is caught here, naming the
recording. Nothing local (kv, config) switches this check off.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

COPY_EVENTS = ("recording.spooled", "recording.quarantined")
HASH_EVENTS = (*COPY_EVENTS, "recording.archived")


def _payload(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def recording_problems(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(subject, problem): rows whose hash or size differ from their custody events, custody
    events naming a recording with no row, hashed recordings no custody event records.

    Both halves are joins streamed from SQLite, so memory stays flat at any ledger size."""
    problems: list[tuple[str, str]] = []
    marks = ",".join("?" * len(HASH_EVENTS))
    for ev in conn.execute(
        "SELECT c.seq, c.type, c.recording_id, c.payload, r.id, r.sha256, r.size"
        " FROM custody c LEFT JOIN recordings r ON r.id = c.recording_id"
        f" WHERE c.type IN ({marks}) ORDER BY c.seq",
        HASH_EVENTS,
    ):
        rid = ev["recording_id"]
        if rid is None or ev["id"] is None:
            problems.append(
                (
                    f"event {ev['seq']}",
                    f"custody event {ev['seq']} ({ev['type']}) names recording {rid}, which has "
                    "no row in the ledger (the row was deleted)",
                )  # fmt: skip
            )
            continue
        problems += _mismatches(ev, ev)
    copies = ",".join("?" * len(COPY_EVENTS))
    for row in conn.execute(
        "SELECT r.id, r.sha256 FROM recordings r WHERE r.sha256 IS NOT NULL AND NOT EXISTS"
        f" (SELECT 1 FROM custody c WHERE c.recording_id = r.id AND c.type IN ({copies}))",
        COPY_EVENTS,
    ):
        problems.append(
            (
                str(row["id"]),
                f"recording {row['id']} has SHA-256 {row['sha256']} in the ledger but no "
                "custody event records its copy",
            )  # fmt: skip
        )
    return problems


def _mismatches(ev: sqlite3.Row, row: sqlite3.Row) -> list[tuple[str, str]]:
    doc = _payload(ev["payload"])
    rid, out = str(row["id"]), []
    where = f"custody event {ev['seq']} ({ev['type']})"
    if row["sha256"] is None:
        return []  # sent back to be copied again (integrity.violation): no hash to compare
    if "sha256" in doc and doc["sha256"] != row["sha256"]:
        out.append(
            (
                rid,
                f"recording {rid}: the ledger's SHA-256 {row['sha256']} differs from "
                f"{doc['sha256']} in {where} (the row or the copy was replaced)",
            )  # fmt: skip
        )
    if "size" in doc and doc["size"] != row["size"]:
        out.append(
            (
                rid,
                f"recording {rid}: the ledger's size {row['size']} differs from "
                f"{doc['size']} in {where}",
            )  # fmt: skip
        )
    return out
