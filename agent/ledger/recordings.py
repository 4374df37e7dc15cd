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
from agent.ledger import custody

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


def set_state(conn: sqlite3.Connection, rid: str, state: str, **fields: Any) -> None:
    assert state in STATES
    fields["updated_at"] = clock.now_iso()
    sets = ", ".join(f"{k}=?" for k in fields)
    conn.execute(
        f"UPDATE recordings SET state=?, {sets} WHERE id=?", (state, *fields.values(), rid)
    )


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
