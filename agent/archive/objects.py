"""The `archive_objects` table: where each archived recording's object is and what it carries.

The one writer of `archive_objects`. The archiver records an upload (`record_upload`) and an
audit (`record_audit`); the archive documents record a written sidecar (`record_sidecar`) and
a stronger object lock (`record_lock`). Every function runs in the caller's transaction, so a
row changes together with the recording's state or custody event that goes with it.
"""

from __future__ import annotations

import sqlite3

from agent.archive.store import LockSpec, ObjectSpec, Stored
from agent.core import clock


def record_upload(
    conn: sqlite3.Connection, rid: str, scheme: str, spec: ObjectSpec, stored: Stored, at: str
) -> None:
    """A recording's object is stored and verified at `at` (a re-upload replaces the row)."""
    lock = stored.lock
    conn.execute(
        "INSERT OR REPLACE INTO archive_objects(recording_id, store, bucket, key,"
        " version_id, size, sha256, checksum, retain_mode, retain_until, legal_hold,"
        " verified_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            rid,
            scheme,
            stored.bucket,
            stored.key,
            stored.version_id,
            # What the store holds: the envelope's size under archive.encryption = "client".
            spec.size if stored.stored_size is None else stored.stored_size,
            spec.sha256,
            stored.checksum,
            lock.mode,
            clock.iso(lock.retain_until),
            int(lock.legal_hold),
            at,
        ),
    )


def record_audit(conn: sqlite3.Connection, rid: str, ok: bool, at: str) -> None:
    """The object was read back in full at `at`; `ok` is whether its hash matched."""
    conn.execute(
        "UPDATE archive_objects SET audited_at=?, audit_ok=? WHERE recording_id=?",
        (at, int(ok), rid),
    )


def record_sidecar(
    conn: sqlite3.Connection, rid: str, version: int, at: str | None, case: str | None
) -> None:
    """The sidecar of metadata `version` (and its case number) was written at `at`."""
    conn.execute(
        "UPDATE archive_objects SET sidecar_version=?, sidecar_at=?, case_number=?"
        " WHERE recording_id=?",
        (version, at, case, rid),
    )


def record_lock(conn: sqlite3.Connection, rid: str, lock: LockSpec) -> None:
    """The object's lock as it now stands on the store (only ever made stronger)."""
    conn.execute(
        "UPDATE archive_objects SET retain_mode=?, retain_until=?, legal_hold=?"
        " WHERE recording_id=?",
        (lock.mode, clock.iso(lock.retain_until), int(lock.legal_hold), rid),
    )
