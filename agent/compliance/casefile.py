"""The case record: a case's conclusion date and when its case file is due (seed 001).

执行终结之日起30日内…形成案卷…归档: from the date a case concludes, its file is due within
`compliance.case_file_days` (30) calendar days. A case is keyed by its case number (案件编号);
its conclusion date is set by `evidence-agent case conclude` through the gate (custodian), and
a change is a new row in `case_versions` with a reason and a `case.concluded` custody event,
in the gate's transaction. A concluded case is open while any of its recordings (those whose
current metadata names the case) is not archived: `due` until the due date has passed, then
`overdue`; `archived` once every recording is; `no_recordings` when none names it here.

Reads go through the case-number index of migration 0014 (`metadata_versions_case`) and the
primary key of `case_versions`: O(cases and their recordings), never a scan of history.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime, timedelta
from typing import Any

from agent.core import clock
from agent.core.errors import TagError
from agent.ledger import custody
from agent.station.context import Context
from agent.tagging.metadata import Validator

STATUSES = ("due", "overdue", "archived", "no_recordings")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
REASON_MAX = 2000

# The expression of the `metadata_versions_case` index, repeated literally so SQLite uses it.
CASE_RECORDINGS_SQL = (
    "SELECT r.id, r.sha256, r.state, r.archived_at FROM metadata_versions m"
    " JOIN recordings r ON r.id = m.recording_id AND r.metadata_version = m.version"
    " WHERE json_extract(m.fields, '$.case_number') = ?"
)
# Every case's current version with its recordings counted, in one indexed query.
CASE_FILES_SQL = (
    "SELECT c.case_number, c.version, c.concluded_on, COUNT(r.id) AS n,"
    " COALESCE(SUM(r.id IS NOT NULL AND r.archived_at IS NULL), 0) AS open"
    " FROM case_versions c"
    " LEFT JOIN metadata_versions m"
    " ON json_extract(m.fields, '$.case_number') = +c.case_number"  # +: no affinity, index
    " LEFT JOIN recordings r ON r.id = m.recording_id AND r.metadata_version = m.version"
    " WHERE c.version ="
    " (SELECT MAX(v.version) FROM case_versions v WHERE v.case_number = c.case_number)"
    " GROUP BY c.case_number ORDER BY c.concluded_on, c.case_number"
)


# Concluded cases with recordings not archived, found from the open side (the partial index
# `recordings_not_archived`): O(recordings not archived), for the MQTT payload.
OPEN_CASES_SQL = (
    "SELECT c.case_number, c.version, c.concluded_on, o.n AS open FROM"
    " (SELECT json_extract(m.fields, '$.case_number') AS case_number, COUNT(*) AS n"
    " FROM recordings r CROSS JOIN metadata_versions m"  # CROSS: open recordings first
    " ON m.recording_id = r.id AND m.version = r.metadata_version"
    " WHERE r.archived_at IS NULL AND json_extract(m.fields, '$.case_number') IS NOT NULL"
    " GROUP BY 1) o"
    " JOIN case_versions c ON c.case_number = o.case_number AND c.version ="
    " (SELECT MAX(v.version) FROM case_versions v WHERE v.case_number = c.case_number)"
    " ORDER BY c.concluded_on, c.case_number"
)


def check_request(
    ctx: Context, case_number: Any, day: Any, reason: Any, now: datetime | None = None
) -> tuple[str, date, str]:
    """(case number, conclusion date, reason), validated; TagError names what is wrong."""
    if not isinstance(case_number, str) or not case_number.strip():
        raise TagError("a case number is required (案件编号), e.g. case conclude C-2026-001 ...")
    case = Validator(ctx.cfg, None).validate({"case_number": case_number})["case_number"]
    if not isinstance(day, str):
        raise TagError("--date is required: the conclusion date as YYYY-MM-DD (station time)")
    try:
        concluded = date.fromisoformat(day.strip())
    except ValueError:
        raise TagError(f"--date {day!r} is not a date: give YYYY-MM-DD (station time)") from None
    today = (now or clock.now()).astimezone(ctx.calendar.tz).date()
    if concluded > today:
        raise TagError(
            f"--date {concluded} is in the future (today is {today} in "
            f"{ctx.cfg.station.timezone}); give the date the case concluded"
        )
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise TagError("--reason is required: say why the case is concluded on this date")
    if _CONTROL.search(text) or len(text) > REASON_MAX:
        raise TagError(f"--reason: plain text of at most {REASON_MAX} characters")
    return case, concluded, text


def current(conn: sqlite3.Connection, case: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM case_versions WHERE case_number = ? ORDER BY version DESC LIMIT 1",
        (case,),
    ).fetchone()


def conclude(
    conn: sqlite3.Connection,
    ctx: Context,
    case: str,
    concluded: date,
    reason: str,
    *,
    actor: str,
    via: str,
) -> dict[str, Any]:
    """Record the conclusion date inside the caller's (the gate's) transaction."""
    old = current(conn, case)
    if old is not None and old["concluded_on"] == concluded.isoformat():
        return {**_case_doc(ctx, conn, old), "changed": False}
    version = 1 if old is None else int(old["version"]) + 1
    at = clock.iso(clock.now()) or ""
    conn.execute(
        "INSERT INTO case_versions(case_number, version, concluded_on, reason, actor, via, at)"
        " VALUES(?,?,?,?,?,?,?)",
        (case, version, concluded.isoformat(), reason, actor, via, at),
    )
    due = due_on(ctx, concluded)
    custody.append(
        conn,
        "case.concluded",
        {
            "case_number": case,
            "version": version,
            "concluded_on": concluded.isoformat(),
            "previous": None if old is None else old["concluded_on"],
            "due_on": due.isoformat(),
            "reason": reason,
            "via": via,
        },
        actor=actor,
    )
    row = current(conn, case)
    assert row is not None
    return {**_case_doc(ctx, conn, row), "changed": True}


def due_on(ctx: Context, concluded: date) -> date:
    return concluded + timedelta(days=ctx.cfg.compliance.case_file_days)


def _status(today: date, due: date, total: int, open_: int) -> str:
    if total == 0:
        return "no_recordings"
    if open_ == 0:
        return "archived"
    return "overdue" if today > due else "due"


def _case_doc(
    ctx: Context, conn: sqlite3.Connection, row: sqlite3.Row, now: datetime | None = None
) -> dict[str, Any]:
    recs = conn.execute(CASE_RECORDINGS_SQL, (row["case_number"],)).fetchall()
    open_ = sum(r["archived_at"] is None for r in recs)
    return _doc(ctx, row, len(recs), open_, now)


def _doc(
    ctx: Context, row: sqlite3.Row, total: int, open_: int, now: datetime | None
) -> dict[str, Any]:
    concluded = date.fromisoformat(row["concluded_on"])
    due = due_on(ctx, concluded)
    today = (now or clock.now()).astimezone(ctx.calendar.tz).date()
    return {
        "case_number": row["case_number"],
        "concluded_on": row["concluded_on"],
        "due_on": due.isoformat(),
        "days_left": (due - today).days,
        "status": _status(today, due, total, open_),
        "recordings": total,
        "not_archived": open_,
        "version": int(row["version"]),
    }


def case_files(ctx: Context, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every concluded case with its case-file status, earliest conclusion first."""
    rows = ctx.ledger.connect().execute(CASE_FILES_SQL).fetchall()
    return [_doc(ctx, r, int(r["n"]), int(r["open"]), now) for r in rows]


def open_case_files(ctx: Context, now: datetime | None = None) -> list[dict[str, Any]]:
    """Concluded cases with a recording not archived (`due` or `overdue`), earliest first;
    `recordings` counts only those not archived (the payload does not need the total)."""
    rows = ctx.ledger.connect().execute(OPEN_CASES_SQL).fetchall()
    return [_doc(ctx, r, int(r["open"]), int(r["open"]), now) for r in rows]


def show(ctx: Context, case: str) -> dict[str, Any]:
    """`case show`: the current record, its history and the case's recordings."""
    conn = ctx.ledger.connect()
    row = current(conn, case)
    recs = conn.execute(CASE_RECORDINGS_SQL, (case,)).fetchall()
    if row is None and not recs:
        raise TagError(
            f"no case {case!r}: no recording is tagged with it and it was never concluded"
        )
    doc: dict[str, Any] = {"case_number": case, "concluded_on": None, "status": "not_concluded"}
    if row is not None:
        doc = _case_doc(ctx, conn, row)
    doc["history"] = [
        {k: r[k] for k in ("version", "concluded_on", "reason", "actor", "via", "at")}
        for r in conn.execute(
            "SELECT * FROM case_versions WHERE case_number = ? ORDER BY version", (case,)
        )
    ]
    doc["recording_list"] = [_recording(r) for r in recs]
    return doc


def _recording(r: sqlite3.Row) -> dict[str, Any]:
    archived = r["archived_at"] is not None
    return {"id": r["id"], "sha256": r["sha256"], "state": r["state"], "archived": archived}
