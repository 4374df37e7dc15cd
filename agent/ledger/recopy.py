"""A recording copied again must match its first copy: what the custody chain already holds.

When the spool copy of a hashed recording is gone, agent.ingest.spool sends it back to be
copied again from the recorder, and its ledger row's SHA-256 is cleared meanwhile. The hash of
the first copy stays in its custody event (`recording.spooled`/`quarantined`, as
agent.ledger.crosscheck reads them), which no row edit can change: that is the hash a re-copy
is compared with. A re-copy that differs is recorded as an `integrity.violation` whose custody
payload carries `check: "recopy"` and both hashes (agent.ingest.recopy); this module finds
those records for the wipe gate, `accept`, `status` and `verify`. Reads only.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.ledger import integrity
from agent.ledger.crosscheck import COPY_EVENTS

CHECK = "recopy"  # the `check` field of the integrity.violation custody payload


def previous_hash(conn: sqlite3.Connection, rid: str) -> str | None:
    """The SHA-256 the newest copy event of `rid` recorded, or None (never copied before)."""
    marks = ",".join("?" * len(COPY_EVENTS))
    for ev in conn.execute(
        f"SELECT payload FROM custody WHERE recording_id = ? AND type IN ({marks})"
        " ORDER BY seq DESC",
        (rid, *COPY_EVENTS),
    ):
        sha = integrity.parsed(ev["payload"]).get("sha256")
        if isinstance(sha, str) and sha:
            return sha
    return None


def mismatch_of(conn: sqlite3.Connection, rid: str) -> dict[str, Any] | None:
    """The recorded re-copy mismatch of `rid` (custody payload), or None. Once recorded it
    stays: the recorder's file no longer holds the bytes the ledger vouches for."""
    return integrity.finding_of(conn, rid, CHECK)


def mismatches(conn: sqlite3.Connection) -> list[tuple[str, dict[str, Any]]]:
    """Every recorded re-copy mismatch: (recording id, custody payload), oldest first."""
    return integrity.findings(conn, CHECK)


def describe(rid: str, doc: dict[str, Any]) -> str:
    """One line naming both hashes and where the re-copied bytes are kept."""
    return (
        f"recording {rid}: copied again from the recorder, SHA-256 {doc.get('recopied_sha256')} "
        f"differs from the recorded {doc.get('recorded_sha256')}; the recorded hash stands, the "
        f"new bytes are kept as spool file {doc.get('kept_as')}, the recorder's file is never "
        "wiped for it (quarantined: check the recorder and the kept file)"
    )
