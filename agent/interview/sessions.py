"""Ledger operations on interview sessions, gaps and marks.

Each function takes the caller's transaction, so a state change, its custody event and its
outbox event commit together or not at all. A session moves requested -> recording ->
stopping -> closed, or to failed; the daemon's interview service does the moving, the CLI,
MQTT and the panel only request it (the ledger is how they reach the daemon).
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from agent.core import clock
from agent.core.errors import AgentError
from agent.core.ids import uuid7
from agent.ledger import custody, events

ACTIVE = ("requested", "recording", "stopping")
STATES = (*ACTIVE, "closed", "failed")
# Gap kinds meaning the camera delivered nothing usable (it is "down" until they close).
DOWN_KINDS = ("no_frames", "unplugged", "no_audio", "write_failed", "agent_down", "capture_failed")
PICTURE_KINDS = ("frozen", "black", "no_sound")


class SessionError(AgentError):
    """A session request that cannot be honoured (none active, already recording, ...)."""


@dataclass
class Metadata:
    """Case metadata a session carries (案件编号, 采集人, 证明对象 ...)."""

    case_number: str | None = None
    interviewers: list[str] = field(default_factory=list)
    subject: str | None = None
    proves: str | None = None
    notes: str | None = None

    def public(self) -> dict[str, Any]:
        """What may go on MQTT: the case number, not the people in it."""
        return {"case_number": self.case_number}

    def full(self) -> dict[str, Any]:
        return {
            "case_number": self.case_number,
            "interviewers": self.interviewers,
            "subject": self.subject,
            "proves": self.proves,
            "notes": self.notes,
        }


def iso_at(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


def epoch(iso: str | None) -> float | None:
    dt = clock.parse_iso(iso)
    return None if dt is None else dt.timestamp()


def active(conn: sqlite3.Connection) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM interview_sessions WHERE state IN ('requested','recording','stopping')"
        " ORDER BY requested_at LIMIT 1"
    ).fetchone()


def get(conn: sqlite3.Connection, sid: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM interview_sessions WHERE id=?", (sid,)).fetchone()


def resolve(conn: sqlite3.Connection, ref: str) -> str:
    """A session id, a unique prefix of 8+ characters, `last` or `active` -> the id."""
    ref = ref.strip()
    if ref in ("last", "latest", "active", "current"):
        sql = "SELECT id FROM interview_sessions"
        if ref in ("active", "current"):
            sql += " WHERE state IN ('requested','recording','stopping')"
        row = conn.execute(sql + " ORDER BY requested_at DESC LIMIT 1").fetchone()
        if row is None:
            raise SessionError(f"there is no {ref} interview session")
        return str(row[0])
    if len(ref) < 8 or not re.fullmatch(r"[0-9a-fA-F-]+", ref):
        raise SessionError(f"session {ref!r}: give the id or at least 8 of its first characters")
    rows = conn.execute(
        "SELECT id FROM interview_sessions WHERE id LIKE ? LIMIT 2", (ref.lower() + "%",)
    ).fetchall()
    if not rows:
        raise SessionError(f"no interview session {ref}")
    if len(rows) > 1:
        raise SessionError(f"session prefix {ref} is ambiguous; give more characters")
    return str(rows[0][0])


def metadata(row: sqlite3.Row) -> Metadata:
    return Metadata(
        row["case_number"],
        json.loads(row["interviewers"] or "[]"),
        row["subject"],
        row["proves"],
        row["notes"],
    )


def request_start(
    conn: sqlite3.Connection, room: str, meta: Metadata, source: str, actor: str
) -> str:
    busy = active(conn)
    if busy is not None:
        raise SessionError(
            f"session {busy['id']} is {busy['state']} in this room; stop it first "
            "(evidence-agent interview stop)"
        )
    sid = uuid7()
    at = clock.now_iso()
    conn.execute(
        "INSERT INTO interview_sessions(id, room, state, case_number, interviewers, subject,"
        " proves, notes, requested_by, requested_at, updated_at)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
        (
            sid,
            room,
            "requested",
            meta.case_number,
            json.dumps(meta.interviewers, ensure_ascii=False),
            meta.subject,
            meta.proves,
            meta.notes,
            source,
            at,
            at,
        ),
    )
    custody.append(
        conn,
        "interview.requested",
        {"session": sid, "room": room, "source": source, **meta.full()},
        actor=actor,
    )
    return sid


def set_recording(
    conn: sqlite3.Connection, sid: str, started: float, cameras: list[str], fallback: bool
) -> None:
    row = get(conn, sid)
    assert row is not None
    at = iso_at(started)
    conn.execute(
        "UPDATE interview_sessions SET state='recording', started_at=?, fallback=?,"
        " updated_at=? WHERE id=?",
        (at, int(fallback), clock.now_iso(), sid),
    )
    custody.append(
        conn,
        "interview.started",
        {"session": sid, "started_at": at, "cameras": cameras, "video_only": fallback},
    )
    events.emit(
        conn,
        "interview.started",
        session=sid,
        room=row["room"],
        started_at=at,
        cameras=cameras,
        video_only=fallback,
        **metadata(row).public(),
    )


def request_stop(conn: sqlite3.Connection, sid: str, source: str, actor: str) -> None:
    conn.execute(
        "UPDATE interview_sessions SET state='stopping', ended_at=?, stop_requested_by=?,"
        " updated_at=? WHERE id=? AND state IN ('requested','recording')",
        (clock.now_iso(), source, clock.now_iso(), sid),
    )
    custody.append(
        conn, "interview.stop_requested", {"session": sid, "source": source}, actor=actor
    )


def close(conn: sqlite3.Connection, sid: str, coverage: float, counts: dict[str, int]) -> None:
    row = get(conn, sid)
    assert row is not None
    at = clock.now_iso()
    conn.execute(
        "UPDATE interview_sessions SET state='closed', closed_at=?, coverage=?, updated_at=?"
        " WHERE id=?",
        (at, coverage, at, sid),
    )
    payload = {"session": sid, "ended_at": row["ended_at"], "coverage": coverage, **counts}
    custody.append(conn, "interview.stopped", payload)
    events.emit(conn, "interview.stopped", room=row["room"], **payload)


def fail(conn: sqlite3.Connection, sid: str, reason: str) -> None:
    at = clock.now_iso()
    conn.execute(
        "UPDATE interview_sessions SET state='failed', reason=?, ended_at=COALESCE(ended_at, ?),"
        " closed_at=?, updated_at=? WHERE id=?",
        (reason, at, at, at, sid),
    )
    custody.append(conn, "interview.failed", {"session": sid, "reason": reason})
    events.emit(conn, "interview.failed", session=sid, reason=reason)


def open_gap(
    conn: sqlite3.Connection, sid: str, camera: str | None, kind: str, start: float, detail: str
) -> int:
    cur = conn.execute(
        "INSERT INTO interview_gaps(session_id, camera, kind, start, detail) VALUES(?,?,?,?,?)",
        (sid, camera, kind, iso_at(start), detail[:500]),
    )
    gid = int(cur.lastrowid or 0)
    events.emit(
        conn,
        "interview.gap",
        session=sid,
        gap=gid,
        camera=camera,
        kind=kind,
        start=iso_at(start),
        end=None,
        open=True,
        detail=detail[:200],
    )
    return gid


def refine_gap(conn: sqlite3.Connection, gid: int, kind: str, detail: str) -> None:
    """An open gap turned out to have a more specific cause (e.g. the camera is unplugged)."""
    conn.execute(
        "UPDATE interview_gaps SET kind=?, detail=? WHERE id=? AND end IS NULL",
        (kind, detail[:500], gid),
    )


def close_gap(conn: sqlite3.Connection, gid: int, end: float) -> None:
    row = conn.execute("SELECT * FROM interview_gaps WHERE id=?", (gid,)).fetchone()
    if row is None or row["end"] is not None:
        return
    start = epoch(row["start"]) or end
    end = max(end, start)
    conn.execute("UPDATE interview_gaps SET end=? WHERE id=?", (iso_at(end), gid))
    fields = {
        "session": row["session_id"],
        "gap": gid,
        "camera": row["camera"],
        "kind": row["kind"],
        "start": row["start"],
        "end": iso_at(end),
        "duration_s": round(end - start, 3),
    }
    custody.append(conn, "interview.gap", {**fields, "detail": row["detail"]})
    events.emit(conn, "interview.gap", **fields, open=False, detail=row["detail"][:200])


def add_mark(conn: sqlite3.Connection, sid: str, source: str, note: str | None, actor: str) -> str:
    at = clock.now_iso()
    conn.execute(
        "INSERT INTO interview_marks(session_id, at, source, note) VALUES(?,?,?,?)",
        (sid, at, source, note),
    )
    custody.append(
        conn,
        "interview.mark",
        {"session": sid, "at": at, "source": source, "note": note},
        actor=actor,
    )
    events.emit(conn, "interview.mark", session=sid, at=at, source=source)
    return at


def set_fallback(conn: sqlite3.Connection, sid: str) -> None:
    conn.execute("UPDATE interview_sessions SET fallback=1 WHERE id=?", (sid,))
