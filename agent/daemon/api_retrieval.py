"""Gate requests of supervised retrieval (调阅): request, approve, refuse, return, list.

`export run REQ` is an export (agent.daemon.api_export); the rules of each step are checks in
agent.access.retrieval that the gate runs inside its one authorisation, so every refusal is an
`access.refused` custody event and every step its own event in the same transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.access import gate, retrieval
from agent.access.gate import Caller
from agent.access.register import Operator
from agent.daemon.api_params import BadRequest, Server, refs, resolver, text


def _req(params: dict[str, Any]) -> str:
    return text(params, "request", required=True, limit=64)


def request(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
    reason = text(params, "reason", required=True)
    wanted = refs(params)
    if not wanted:
        raise BadRequest("no recordings given: name them by id or SHA-256 prefix")
    tz = server.ctx.cfg.station.timezone

    def act(conn: sqlite3.Connection, op: Operator, ids: list[str]) -> Any:
        return retrieval.view(retrieval.create(conn, op, ids, reason), tz)

    ledger = server.ctx.ledger
    return gate.run(ledger, server.register, caller, "export.request", resolver(wanted), act)


def _decide(approve: bool) -> Any:
    verb = "export.approve" if approve else "export.refuse"

    def handle(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
        req = _req(params)
        reason = text(params, "reason", required=not approve)
        tz = server.ctx.cfg.station.timezone

        def act(conn: sqlite3.Connection, op: Operator, _ids: list[str]) -> Any:
            retrieval.decide(conn, op, req, approve, reason)
            return retrieval.view(retrieval.get(conn, req), tz)

        return gate.run(
            server.ctx.ledger, server.register, caller, verb,
            retrieval.recordings_of(req), act, retrieval.check_decide(req),
        )  # fmt: skip

    return handle


def returned(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
    req = _req(params)
    note = text(params, "note")
    tz = server.ctx.cfg.station.timezone

    def act(conn: sqlite3.Connection, op: Operator, _ids: list[str]) -> Any:
        retrieval.mark_returned(conn, op, req, note)
        return retrieval.view(retrieval.get(conn, req), tz)

    return gate.run(
        server.ctx.ledger, server.register, caller, "export.return",
        retrieval.recordings_of(req), act, retrieval.check_return(req),
    )  # fmt: skip


def listing(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
    open_only = params.get("open") is True
    tz = server.ctx.cfg.station.timezone

    def act(conn: sqlite3.Connection, _op: Operator, _ids: list[str]) -> Any:
        return retrieval.borrow_register(conn, tz, open_only)

    return gate.run(server.ctx.ledger, server.register, caller, "export.list", lambda _c: [], act)


VERBS = {
    "export.request": request,
    "export.approve": _decide(True),
    "export.refuse": _decide(False),
    "export.return": returned,
    "export.list": listing,
}
