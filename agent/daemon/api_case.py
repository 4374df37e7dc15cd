"""The gate's `case.conclude` request: a case's conclusion date, set by a custodian.

Parameters are untrusted: checked here and by agent.compliance.casefile.check_request before
the gate's transaction; the operator is the authenticated caller, never a typed name.
"""

from __future__ import annotations

import socket
import sqlite3
from typing import Any

from agent.access import gate
from agent.access.gate import Caller
from agent.access.register import Operator
from agent.daemon.api_params import Server, text


def conclude(server: Server, caller: Caller, params: dict[str, Any], _s: socket.socket) -> Any:
    from agent.compliance import casefile

    case, day, reason = casefile.check_request(
        server.ctx,
        text(params, "case_number", limit=200),
        text(params, "date", limit=40),
        text(params, "reason"),
    )

    def act(conn: sqlite3.Connection, op: Operator, _ids: list[str]) -> Any:
        return casefile.conclude(
            conn, server.ctx, case, day, reason, actor=op.officer_id, via=caller.via
        )

    return gate.run(server.ctx.ledger, server.register, caller, "case.conclude", lambda _c: [], act)
