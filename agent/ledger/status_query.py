"""Indexed reads behind `status`: recent recordings, their total, open work, counters.

Every query here is answered from an index or a trigger-kept counter (migration 0009), so
`status` costs O(what it prints), not O(history): the recent-first order repeats the
expression of the `recordings_*recent` indexes literally, totals come from
`recording_counts`, and paging is by key (`--before ID`), never by OFFSET.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent.core.errors import UnknownRecordingError
from agent.ledger.recordings import resolve

# Must match the indexes of migration 0009 character for character.
RECENT = "COALESCE(r.start, r.discovered_at)"
OPEN_STATES = ("discovered", "copying", "spooled", "failed", "quarantined")

BASE_SQL = (
    "SELECT r.*, d.serial, m.fields AS metadata_fields FROM recordings r"
    " JOIN devices d ON d.id = r.device_id LEFT JOIN metadata_versions m"
    " ON m.recording_id = r.id AND m.version = r.metadata_version"
)


@dataclass
class Filters:
    """What `status` lists: `limit` 0 (or None) is everything, streamed."""

    limit: int | None = None
    state: str | None = None
    since: str | None = None
    recorder: str | None = None  # serial
    before: str | None = None  # recording id or SHA-256 prefix: page after this one

    def device_ids(self, conn: sqlite3.Connection) -> list[int] | None:
        if self.recorder is None:
            return None
        rows = conn.execute("SELECT id FROM devices WHERE serial = ?", (self.recorder,))
        return [int(r[0]) for r in rows]


def _where(conn: sqlite3.Connection, f: Filters) -> tuple[str, list[Any]]:
    sql, params = " WHERE 1=1", list[Any]()
    devices = f.device_ids(conn)
    if devices is not None:
        sql += f" AND r.device_id IN ({','.join('?' * len(devices))})"
        params += devices
    if f.state:
        sql += " AND r.state = ?"
        params.append(f.state)
    if f.since:
        sql += f" AND {RECENT} >= ?"
        params.append(f.since)
    return sql, params


def _cursor(conn: sqlite3.Connection, ref: str) -> tuple[str, str]:
    rid = resolve(conn, ref)
    row = conn.execute(
        f"SELECT {RECENT} AS k, r.id FROM recordings r WHERE r.id = ?", (rid,)
    ).fetchone()
    if row is None:  # resolve() found it; only a concurrent delete gets here
        raise UnknownRecordingError(f"no recording with id {rid}")
    return str(row["k"]), str(row["id"])


def rows(conn: sqlite3.Connection, f: Filters) -> Iterator[sqlite3.Row]:
    """Recordings newest first; a lazy cursor, so `limit` 0 streams in constant memory."""
    where, params = _where(conn, f)
    # Always true (times are non-empty text); it makes the walk down the recent-first index
    # a range SEARCH in the plan, like every other read here.
    where += f" AND {RECENT} > ''"
    if f.before:
        where += f" AND ({RECENT}, r.id) < (?, ?)"
        params += list(_cursor(conn, f.before))
    sql = BASE_SQL + where + f" ORDER BY {RECENT} DESC, r.id DESC"
    if f.limit:
        sql += " LIMIT ?"
        params.append(f.limit)
    yield from conn.execute(sql, params)


def total(conn: sqlite3.Connection, f: Filters) -> int:
    """How many recordings match the filters (paging aside), from counters where possible."""
    if f.since:
        where, params = _where(conn, f)
        row = conn.execute("SELECT COUNT(*) FROM recordings r" + where, params).fetchone()
        return int(row[0])
    sql, params = "SELECT COALESCE(SUM(n), 0) FROM recording_counts WHERE 1=1", list[Any]()
    devices = f.device_ids(conn)
    if devices is not None:
        sql += f" AND device_id IN ({','.join('?' * len(devices))})"
        params += devices
    if f.state:
        sql += " AND state = ?"
        params.append(f.state)
    return int(conn.execute(sql, params).fetchone()[0])


def counts_by_device(conn: sqlite3.Connection) -> dict[int, dict[str, tuple[int, int]]]:
    """device id -> state -> (recordings, bytes), from the trigger-kept counts."""
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for r in conn.execute("SELECT device_id, state, n, bytes FROM recording_counts WHERE n > 0"):
        out.setdefault(int(r[0]), {})[str(r[1])] = (int(r[2]), int(r[3]))
    return out


def counts_by_state(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """state -> (recordings, bytes) over the whole ledger."""
    return {
        str(r[0]): (int(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT state, SUM(n), SUM(bytes) FROM recording_counts GROUP BY state"
        )
    }


def counter(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT n FROM ledger_counters WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def unmet(conn: sqlite3.Connection, limit: int | None = None) -> list[sqlite3.Row]:
    """Recordings whose deadline is not met yet, earliest deadline first (partial index)."""
    sql = (
        "SELECT r.id, r.sha256, r.state, r.deadline, r.deadline_met_at, d.serial"
        " FROM recordings r JOIN devices d ON d.id = r.device_id"
        " WHERE r.deadline_met_at IS NULL AND r.deadline IS NOT NULL ORDER BY r.deadline"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    return list(conn.execute(sql))
