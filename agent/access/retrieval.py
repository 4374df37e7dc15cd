"""Supervised retrieval (调阅): export requests, their approval, one execution, their return.

An export is a request (custodian) that a supervisor other than the requester approves or
refuses, that the requester executes once within `access.approval_window_hours` of the
approval, and that a custodian marks returned. With `access.two_person_rule = false` a
custodian may run own requests unapproved, except when any recording is confidential
(metadata `confidentiality` other than `none`): that always needs approval.

The rules are `Check`s the gate runs inside its one authorisation (agent.access.gate.run), so
a refusal is recorded as `access.refused` like any other. The `export_requests` table
(migration 0013) is written only here, inside the gate's transaction, each change with its
custody event (`export.requested`, `export.approved`, `export.refused`, `export.returned`).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import timedelta
from typing import Any

from agent.access.gate import Check, Resolve
from agent.access.register import Operator
from agent.config.access import AccessConfig
from agent.core import clock
from agent.core.errors import AgentError
from agent.ledger import custody

NOT_CONFIDENTIAL = ("", "none")


class UnknownRequestError(AgentError):
    """No export request has this id."""

    exit_code = 65  # EX_DATAERR


def confidential(conn: sqlite3.Connection, ids: list[str]) -> list[str]:
    """The recordings whose current metadata marks them confidential (unknown values count)."""
    out = []
    for rid in ids:
        row = conn.execute(
            "SELECT m.fields FROM recordings r JOIN metadata_versions m"
            " ON m.recording_id = r.id AND m.version = r.metadata_version WHERE r.id = ?",
            (rid,),
        ).fetchone()
        level = json.loads(row["fields"]).get("confidentiality") if row else None
        if str(level or "").strip().lower() not in NOT_CONFIDENTIAL:
            out.append(rid)
    return out


def get(conn: sqlite3.Connection, req: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM export_requests WHERE id = ?", (req,)).fetchone()
    if row is None:
        raise UnknownRequestError(
            f"no export request {req!r}: `evidence-agent export list` shows the requests"
        )
    return row  # type: ignore[no-any-return]


def recordings_of(req: str) -> Resolve:
    """A gate resolver: the recordings a request names."""

    def resolve(conn: sqlite3.Connection) -> list[str]:
        return list(json.loads(get(conn, req)["recordings"]))

    return resolve


def _event(
    conn: sqlite3.Connection, type_: str, op: Operator, row: sqlite3.Row, **extra: Any
) -> None:
    payload = {
        "request": row["id"],
        "operator": op.officer_id,
        "requester": row["requester"],
        "recordings": json.loads(row["recordings"]),
        **extra,
    }
    custody.append(conn, type_, payload, actor=op.officer_id)


def create(
    conn: sqlite3.Connection, op: Operator, ids: list[str], reason: str, *, executed: bool = False
) -> sqlite3.Row:
    """A new request (state `requested`; `executed` for the one-step path) and its event."""
    if not reason.strip():
        raise AgentError("--reason is required: why are the recordings retrieved?")
    req, now = str(uuid.uuid4()), clock.iso(clock.now())
    secret = bool(confidential(conn, ids))
    conn.execute(
        "INSERT INTO export_requests(id, requester, recordings, reason, state, confidential,"
        " requested_at) VALUES (?,?,?,?,?,?,?)",
        (req, op.officer_id, json.dumps(ids), reason, "requested", int(secret), now),
    )
    row = get(conn, req)
    _event(conn, "export.requested", op, row, reason=reason, confidential=secret)
    return row


def check_decide(req: str) -> Check:
    """Approve/refuse: only a requested one, never by its requester (two-person rule)."""

    def check(conn: sqlite3.Connection, op: Operator, _ids: list[str]) -> str:
        row = get(conn, req)
        if row["state"] != "requested":
            return f"export request {req} is {row['state']}; only a pending one can be decided"
        if row["requester"] == op.officer_id:
            return (
                f"you ({op.officer_id}) made export request {req}: a supervisor other than "
                "the requester must approve or refuse it"
            )
        return ""

    return check


def decide(
    conn: sqlite3.Connection, op: Operator, req: str, approve: bool, reason: str
) -> dict[str, Any]:
    state = "approved" if approve else "refused"
    if not approve and not reason.strip():
        raise AgentError("--reason is required when refusing an export request")
    conn.execute(
        "UPDATE export_requests SET state = ?, decided_by = ?, decided_at = ?,"
        " decision_reason = ? WHERE id = ? AND state = 'requested'",
        (state, op.officer_id, clock.iso(clock.now()), reason, req),
    )
    row = get(conn, req)
    _event(conn, f"export.{state}", op, row, reason=reason)
    return dict(row)


def _expired(cfg: AccessConfig, row: sqlite3.Row) -> str:
    approved = clock.parse_iso(row["decided_at"])
    assert approved is not None
    window = timedelta(hours=cfg.approval_window_hours)
    if clock.now() - approved < window:
        return ""
    return (
        f"the approval of export request {row['id']} ({row['decided_at']}) has expired: it "
        f"is valid for {cfg.approval_window_hours:g} h (access.approval_window_hours); "
        "make a new request"
    )


def _unapproved(cfg: AccessConfig, conn: sqlite3.Connection, row: sqlite3.Row) -> str:
    if cfg.two_person_rule:
        return (
            f"export request {row['id']} awaits approval by a supervisor other than you "
            "(access.two_person_rule is on): `evidence-agent export approve REQ`"
        )
    secret = confidential(conn, json.loads(row["recordings"]))
    if secret:
        return (
            f"export request {row['id']} names confidential recordings ({', '.join(secret)}): "
            "they need a supervisor's approval whatever access.two_person_rule says"
        )
    return ""


def check_run(cfg: AccessConfig, req: str) -> Check:
    """Run: by the requester, once, approved (or unapproved where allowed), in the window."""

    def check(conn: sqlite3.Connection, op: Operator, _ids: list[str]) -> str:
        row = get(conn, req)
        if row["requester"] != op.officer_id:
            return f"only the requester ({row['requester']}) may run export request {req}"
        state = row["state"]
        if state in ("executed", "returned"):
            return (
                f"export request {req} was already executed at {row['executed_at']}: an "
                "approval is used once; make a new request"
            )
        if state == "refused":
            return (
                f"export request {req} was refused by {row['decided_by']}: {row['decision_reason']}"
            )
        if state == "requested":
            return _unapproved(cfg, conn, row)
        return _expired(cfg, row)

    return check


def check_one_step(cfg: AccessConfig) -> Check:
    """`export ID... --to DIR` without a request: only where no approval is needed."""

    def check(conn: sqlite3.Connection, _op: Operator, ids: list[str]) -> str:
        if cfg.two_person_rule:
            return (
                "exports need a supervisor's approval (access.two_person_rule is on): "
                "`evidence-agent export request ID... --reason TEXT`, then a supervisor "
                "runs `export approve REQ`, then you run `export run REQ --to DIR`"
            )
        secret = confidential(conn, ids)
        if secret:
            return (
                f"confidential recordings ({', '.join(secret)}) need a supervisor's approval: "
                "`evidence-agent export request ID... --reason TEXT`, then `export approve "
                "REQ` by a supervisor, then `export run REQ --to DIR`"
            )
        return ""

    return check


def mark_executed(conn: sqlite3.Connection, req: str, export_id: str, to: str) -> None:
    """Consumed at the start: an interrupted run does not leave a second one open."""
    conn.execute(
        "UPDATE export_requests SET state = 'executed', executed_at = ?, export_id = ?,"
        " export_to = ? WHERE id = ?",
        (clock.iso(clock.now()), export_id, to, req),
    )


def check_return(req: str) -> Check:
    def check(conn: sqlite3.Connection, _op: Operator, _ids: list[str]) -> str:
        state = get(conn, req)["state"]
        if state != "executed":
            return f"export request {req} is {state}; only an executed retrieval is returned"
        return ""

    return check


def mark_returned(conn: sqlite3.Connection, op: Operator, req: str, note: str) -> dict[str, Any]:
    conn.execute(
        "UPDATE export_requests SET state = 'returned', returned_by = ?, returned_at = ?,"
        " return_note = ? WHERE id = ? AND state = 'executed'",
        (op.officer_id, clock.iso(clock.now()), note, req),
    )
    row = get(conn, req)
    _event(conn, "export.returned", op, row, note=note)
    return dict(row)


def manifest_part(row: sqlite3.Row, ops: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The request and its approval, as the signed manifest carries them."""

    def who(officer: str | None) -> dict[str, Any]:
        known = ops.get(officer or "", {})
        return {"operator": officer, "name": known.get("name"), "cert_no": known.get("cert_no")}

    approval = None
    if row["decided_by"]:
        approval = {**who(row["decided_by"]), "at": row["decided_at"],
                    "reason": row["decision_reason"]}  # fmt: skip
    return {
        "id": row["id"],
        **who(row["requester"]),
        "reason": row["reason"],
        "requested_at": row["requested_at"],
        "confidential": bool(row["confidential"]),
        "approval": approval,
    }


_TIMES = ("requested_at", "decided_at", "executed_at", "returned_at")


def view(row: sqlite3.Row, tz: str) -> dict[str, Any]:
    """A request as `export list` shows it: times in station time with their offset."""
    doc = dict(row)
    doc["recordings"] = json.loads(doc["recordings"])
    doc["confidential"] = bool(doc["confidential"])
    for key in _TIMES:
        at = clock.parse_iso(doc[key])
        doc[key] = clock.iso(clock.local(at, tz)) if at else None
    return doc


def borrow_register(conn: sqlite3.Connection, tz: str, open_only: bool) -> list[dict[str, Any]]:
    """Requests newest first; open ones are pending, approved or executed but not returned."""
    where = " WHERE state IN ('requested', 'approved', 'executed')" if open_only else ""
    rows = conn.execute(f"SELECT * FROM export_requests{where} ORDER BY requested_at DESC, id")
    return [view(r, tz) for r in rows]
