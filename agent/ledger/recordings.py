"""Ledger operations on devices and recordings: find-or-create, state changes, lookups.

Each function takes the connection of the caller's transaction, so a state change, its custody
event and its outbox event commit together or not at all.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.core import clock
from agent.core.errors import UnknownRecordingError
from agent.core.ids import is_recording_id, is_sha_prefix, uuid7
from agent.core.safefs import SourceFile
from agent.ledger import custody, events

STATES = ("discovered", "copying", "spooled", "archived", "released", "failed", "quarantined")
HASHED_STATES = ("spooled", "archived", "released", "quarantined")


def effective_times(row: Any) -> dict[str, Any]:
    """The one effective-time rule: a recording's start and end as the recorder stamped them,
    corrected by the recorder's clock offset when one was measured at dock
    (agent.recorders.recclock). status, compliance, tagging, new archive keys, sidecars and
    export manifests all show these; the recorder's own times stay beside them as
    `start_original`/`end_original` once a correction exists. In SQL the same rule reads
    `COALESCE(start_corrected, start)` (compliance keeps it in its indexed expressions)."""
    return {
        "start": row["start_corrected"] or row["start"],
        "end": row["end_corrected"] or row["end"],
        "start_original": row["start"],
        "end_original": row["end"],
        "clock_offset_s": row["clock_offset_s"],
    }


def discover_file(
    conn: sqlite3.Connection, device_id: int, f: SourceFile, fields: dict[str, Any]
) -> tuple[str, str]:
    """Find-or-create the recording for `f`. Returns (id, "new"|"updated"|"known").

    (device, path, size, mtime) finds the same recording again after a crash or re-dock. A
    not-yet-hashed row at the same path whose size/mtime moved is the same recording still
    being written: it is updated in place (and its stability clock restarts).
    """
    row = conn.execute(
        "SELECT id FROM recordings WHERE device_id=? AND source_path_raw=? AND size=?"
        " AND mtime_ns=?",
        (device_id, f.rel, f.size, f.mtime_ns),
    ).fetchone()
    if row is not None:
        return str(row["id"]), "known"
    at = clock.now_iso()
    growing = conn.execute(
        "SELECT id FROM recordings WHERE device_id=? AND source_path_raw=? AND sha256 IS NULL"
        " AND state IN ('discovered','failed')",
        (device_id, f.rel),
    ).fetchone()
    if growing is not None:
        sets = ", ".join(f"{k}=?" for k in fields)
        conn.execute(
            f"UPDATE recordings SET size=?, mtime_ns=?, stable_since=?, updated_at=?,"
            f" state='discovered', {sets} WHERE id=?",
            (f.size, f.mtime_ns, at, at, *fields.values(), growing["id"]),
        )
        return str(growing["id"]), "updated"
    rid = uuid7()
    cols = [
        "id",
        "device_id",
        "source_path",
        "source_path_raw",
        "size",
        "mtime_ns",
        "state",
        "discovered_at",
        "updated_at",
        "stable_since",
        *fields,
    ]
    # A file last modified before now has been stable since its mtime: no need to wait a
    # settle period for footage that has sat on the recorder for hours.
    stable = min(clock.now(), clock.from_mtime_ns(f.mtime_ns))
    vals = [
        rid,
        device_id,
        f.display,
        f.rel,
        f.size,
        f.mtime_ns,
        "discovered",
        at,
        at,
        clock.iso(stable),
        *fields.values(),
    ]
    conn.execute(
        f"INSERT INTO recordings({', '.join(cols)}) VALUES({', '.join('?' * len(cols))})", vals
    )
    custody.append(
        conn,
        "recording.discovered",
        {
            "path": f.display,
            "size": f.size,
            "mtime_ns": f.mtime_ns,
            "start": fields.get("start"),
            "end": fields.get("end"),
            "deadline": fields.get("deadline"),
        },
        recording_id=rid,
    )
    return rid, "new"


def transition(
    conn: sqlite3.Connection,
    rid: str,
    state: str,
    *,
    fields: dict[str, Any] | None = None,
    custody_type: str | None = None,
    payload: dict[str, Any] | None = None,
    actor: str = "agent",
    event: str | None = None,
    event_fields: dict[str, Any] | None = None,
) -> None:
    """The one state change of a recording: sets `state` (and `fields`), appends its custody
    event `custody_type` with `payload`, and emits its outbox `event` with `event_fields`, all
    on the caller's transaction so they commit together or not at all."""
    if state not in STATES:
        raise ValueError(f"unknown recording state {state!r}; one of {', '.join(STATES)}")
    values = {**(fields or {}), "updated_at": clock.now_iso()}
    sets = ", ".join(f"{k}=?" for k in values)
    conn.execute(
        f"UPDATE recordings SET state=?, {sets} WHERE id=?", (state, *values.values(), rid)
    )
    if custody_type is not None:
        custody.append(conn, custody_type, payload or {}, recording_id=rid, actor=actor)
    if event is not None:
        events.emit(conn, event, **(event_fields or {}))


def get(conn: sqlite3.Connection, rid: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT r.*, d.vendor, d.serial, d.volume, d.docked, d.registered,"
        " d.inventory_status FROM recordings r JOIN devices d"
        " ON d.id = r.device_id WHERE r.id = ?",
        (rid,),
    ).fetchone()


def resolve(conn: sqlite3.Connection, ref: str) -> str:
    """An id, or a unique SHA-256 prefix of at least 12 hex digits, → the recording id."""
    if is_recording_id(ref):
        if conn.execute("SELECT 1 FROM recordings WHERE id=?", (ref,)).fetchone():
            return ref
        raise UnknownRecordingError(f"no recording with id {ref}")
    if is_sha_prefix(ref):
        rows = conn.execute(
            "SELECT id FROM recordings WHERE sha256 LIKE ?", (ref.lower() + "%",)
        ).fetchall()
        if len(rows) == 1:
            return str(rows[0]["id"])
        if not rows:
            raise UnknownRecordingError(f"no recording whose SHA-256 starts with {ref}")
        raise UnknownRecordingError(
            f"SHA-256 prefix {ref} matches {len(rows)} recordings; give more digits"
        )
    raise UnknownRecordingError(
        f"{ref!r} is neither a recording id nor a SHA-256 prefix of 12+ hex digits"
    )


# --- the recording's other facts: each a named write, so `recordings` has one writer module ---


def requeue_copying(conn: sqlite3.Connection) -> int:
    """After a crash: every interrupted copy (`copying`) goes back to `discovered`."""
    return int(
        conn.execute("UPDATE recordings SET state='discovered' WHERE state='copying'").rowcount
    )


def set_priority(conn: sqlite3.Connection, rid: str, priority: int) -> None:
    conn.execute("UPDATE recordings SET priority = ? WHERE id = ?", (priority, rid))


def set_spool_key(conn: sqlite3.Connection, rids: list[str], kid: Any) -> None:
    """The key that now encrypts each spool copy in `rids` (sealed later, or re-wrapped)."""
    conn.executemany("UPDATE recordings SET spool_key_id=? WHERE id=?", [(kid, r) for r in rids])


def mark_spool_removed(conn: sqlite3.Connection, rid: str, at: str | None) -> None:
    conn.execute("UPDATE recordings SET spool_removed_at=?, updated_at=? WHERE id=?", (at, at, rid))


def set_corrected_times(
    conn: sqlite3.Connection,
    rid: str,
    start: str | None,
    end: str | None,
    offset: float | None,
    deadline: str | None,
) -> None:
    """The recorder-clock correction (agent.recorders.recclock) and the deadline it moves."""
    conn.execute(
        "UPDATE recordings SET start_corrected=?, end_corrected=?, clock_offset_s=?,"
        " deadline=? WHERE id=?",
        (start, end, offset, deadline, rid),
    )


def set_deadline(conn: sqlite3.Connection, rid: str, deadline: str | None) -> None:
    conn.execute("UPDATE recordings SET deadline = ? WHERE id = ?", (deadline, rid))


def set_metadata_version(conn: sqlite3.Connection, rid: str, version: int) -> None:
    conn.execute("UPDATE recordings SET metadata_version = ? WHERE id = ?", (version, rid))


def schedule_archive_retry(
    conn: sqlite3.Connection, rid: str, attempts: int, retry_at: str | None, error: str
) -> None:
    conn.execute(
        "UPDATE recordings SET archive_attempts=?, archive_retry_at=?, archive_error=? WHERE id=?",
        (attempts, retry_at, error, rid),
    )
