"""The console's approvals page read (`console.approvals`): supervised retrieval as the
logged-in officer may see it.

A supervisor sees the export requests waiting for a decision that someone else made (the
requester never decides their own, agent/access/retrieval.py); a custodian sees the state of
their own requests. Deciding is not done here: the console sends `export.approve` /
`export.refuse` with its session ticket, so the decision goes through the one gate as
Caller(via="console") like any other front end.
"""

from __future__ import annotations

from typing import Any

from agent.access import retrieval
from agent.access.gate import Caller
from agent.daemon.api_console import _officer
from agent.daemon.api_params import Server

MAX_ROWS = 200


def _names(server: Server, officers: set[str]) -> dict[str, str]:
    out = {}
    for officer in officers:
        op = server.register.find(Caller(via="console", officer_id=officer))
        out[officer] = op.name if op is not None else ""
    return out


def approvals(server: Server, caller: Caller, _p: dict[str, Any], _s: Any) -> Any:
    me = _officer(server, caller)
    op = server.register.find(caller)
    supervisor = op is not None and op.has("supervisor")
    custodian = op is not None and op.has("custodian")
    if not (supervisor or custodian):
        _officer(server, caller, "supervisor")  # refuses, naming the roles wanted
    conn = server.ctx.ledger.connect()
    every = retrieval.borrow_register(conn, server.ctx.cfg.station.timezone, open_only=False)
    pending = [
        r for r in every if supervisor and r["state"] == "requested" and r["requester"] != me
    ][:MAX_ROWS]
    mine = [r for r in every if custodian and r["requester"] == me][:MAX_ROWS]
    names = _names(server, {r["requester"] for r in pending} | {me})
    for r in pending + mine:
        r["requester_name"] = names.get(r["requester"], "")
    return {"supervisor": supervisor, "custodian": custodian, "pending": pending, "mine": mine}


VERBS = {"console.approvals": approvals}
