"""The gate's side of a console PIN set on first use with a one-time code (docs/console.md).

`pin.code` (an admin, gate action `pin.set`): issue an officer a one-time code, returned once
to the admin's command line (`operators set-pin OFFICER --one-time`) and stored only hashed.
`console.first_pin` (the console service only, like `console.login`): the officer's id, code
and new PIN; a right code sets the PIN and logs the officer in (a ticket, as a PIN login).
"""

from __future__ import annotations

import socket
from typing import Any

from agent.access import gate, pincodes
from agent.access.gate import Caller
from agent.daemon.api_console import _OFFICER, Tickets, _known, require_console
from agent.daemon.api_params import BadRequest, Server, text


def issue_code(server: Server, caller: Caller, params: dict[str, Any], _s: socket.socket) -> Any:
    officer_id = text(params, "officer_id", required=True, limit=64)
    _known(server, officer_id)
    tz = server.ctx.cfg.station.timezone

    def act(conn: Any, op: Any, _ids: list[str]) -> Any:
        code, expires = pincodes.issue(conn, officer_id, actor=f"operator:{op.officer_id}")
        from agent.core import clock

        at = clock.parse_iso(expires)
        shown = clock.iso(clock.local(at, tz)) if at else expires
        return {"officer_id": officer_id, "code": code, "expires_at": shown}

    return gate.run(server.ctx.ledger, server.register, caller, "pin.set", lambda _c: [], act)


def first_pin(server: Server, tickets: Tickets, caller: Caller, params: dict[str, Any]) -> Any:
    require_console(server, caller)
    officer_id = text(params, "officer_id", required=True, limit=64)
    code = text(params, "code", required=True, limit=64)
    pin = text(params, "pin", required=True, limit=64)
    if not _OFFICER.match(officer_id):
        raise BadRequest("officer_id: 1-64 characters of A-Z a-z 0-9 _ . -")
    server.register.refresh()
    op = server.register.find(Caller(via="console", officer_id=officer_id))
    eligible = op is not None and op.active and not server.register.error
    cfg = server.ctx.cfg.console
    backoff = (cfg.pin_backoff_seconds, cfg.pin_backoff_max_seconds)
    if not eligible and tickets.strangers.wait() > 0:
        return {"granted": False, "retry_after_s": tickets.strangers.wait()}
    result = pincodes.redeem(
        server.ctx.ledger, officer_id, code, pin, eligible=eligible, backoff=backoff
    )
    if not eligible:
        return {"granted": False, "retry_after_s": tickets.strangers.failed(*backoff)}
    if not result.ok or op is None:
        return {"granted": False, "retry_after_s": result.retry_after_s}
    return {
        "granted": True,
        "session": tickets.issue(officer_id),
        "officer_id": op.officer_id,
        "name": op.name,
        "roles": list(op.roles),
    }


def verbs(tickets: Tickets) -> dict[str, Any]:
    return {
        "pin.code": issue_code,
        "console.first_pin": lambda sv, c, p, _s: first_pin(sv, tickets, c, p),
    }
