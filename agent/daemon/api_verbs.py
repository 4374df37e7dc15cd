"""What the gate does for each request: authorise through agent.access.gate, then act.

Parameters come from an untrusted client: each is checked for type and size here, once, and
nothing a client sends names the operator (the peer uid does) or a path the daemon writes.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from typing import Any

from agent.access import gate
from agent.access.gate import Caller
from agent.access.register import Operator
from agent.core import clock
from agent.core.errors import UnknownRecordingError
from agent.daemon.api_case import conclude as case_conclude
from agent.daemon.api_export import serve_export
from agent.daemon.api_params import Server, refs, resolver, text
from agent.daemon.api_retrieval import VERBS as RETRIEVAL_VERBS
from agent.ledger import recordings as rec

Handler = Callable[[Server, Caller, dict[str, Any], socket.socket], Any]


def _tag_refs(server: Server, params: dict[str, Any]) -> list[str]:
    from agent.core.errors import TagError
    from agent.tagging.apply import select_recordings

    out = refs(params)
    serial = text(params, "serial", limit=64)
    if serial:
        lo_s, hi_s = text(params, "from", limit=40), text(params, "to", limit=40)
        lo, hi = clock.parse_iso(lo_s or None), clock.parse_iso(hi_s or None)
        picked = select_recordings(server.ctx, serial, lo, hi)
        if not picked:
            raise TagError(
                f"recorder {serial} has no recordings starting in the range "
                f"{lo_s or '…'} to {hi_s or '…'}"
            )
        out += picked
    return out


def tag(server: Server, caller: Caller, params: dict[str, Any], _s: socket.socket) -> Any:
    from agent.core.errors import TagError
    from agent.tagging import apply as tagging

    fields = params.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise TagError("no fields to set (fields: an object of metadata fields)")
    reason = text(params, "reason")
    wanted = _tag_refs(server, params)
    if not wanted:
        raise TagError("no recordings given: name them by id or SHA-256 prefix (12+ hex digits)")

    def act(_c: sqlite3.Connection, op: Operator, ids: list[str]) -> Any:
        done = tagging.tag(
            server.ctx, ids, fields, actor=op.officer_id, reason=reason, origin=caller.via
        )
        return [r.to_dict() for r in done]

    def resolve(conn: sqlite3.Connection) -> list[str]:
        try:
            return resolver(wanted)(conn)
        except UnknownRecordingError as exc:
            raise TagError(str(exc)) from None

    return gate.run(server.ctx.ledger, server.register, caller, "tag", resolve, act)


def _decide(verb: str) -> Handler:
    def handle(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
        from agent.actions.quarantine import decide

        reason = text(params, "reason")  # an empty one is decide()'s own error
        wanted = refs(params)

        def resolve(conn: sqlite3.Connection) -> list[str]:
            # An unknown ref is the decision's own per-recording failure, not the gate's.
            out = []
            for r in wanted:
                try:
                    out.append(rec.resolve(conn, r))
                except UnknownRecordingError:
                    continue
            return out

        def act(_c: sqlite3.Connection, op: Operator, _ids: list[str]) -> Any:
            results = decide(server.ctx, wanted, verb, op.officer_id, reason)  # type: ignore[arg-type]
            return [r.__dict__ for r in results]

        return gate.run(server.ctx.ledger, server.register, caller, verb, resolve, act)

    return handle


def _interview(verb: str) -> Handler:
    def handle(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
        from agent.interview import commands

        op, _ = gate.grant(
            server.ctx.ledger, server.register, caller, f"interview.{verb}", lambda _c: []
        )
        # The session runs after the grant commits: its start waits for the camera, which
        # must not hold the ledger's write lock.
        clean = {k: v for k, v in params.items() if k not in ("operator", "wait")}
        clean.update(source="cli", operator=op.officer_id)
        wait = params.get("wait", True) is not False
        if verb == "start":
            return commands.start(server.ctx, clean, wait=wait)
        if verb == "stop":
            return commands.stop(server.ctx, clean, wait=wait)
        return commands.mark(server.ctx, clean)

    return handle


def _export(server: Server, caller: Caller, params: dict[str, Any], s: socket.socket) -> Any:
    return serve_export(server, caller, params, s)


def _audit(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
    from agent.actions import audit

    query = audit.Query.from_params(params)
    ids: list[str] = [query.recording] if query.recording else []

    def act(conn: sqlite3.Connection, op: Operator, rids: list[str]) -> Any:
        query.recording = rids[0] if rids else None
        return audit.collect(server.ctx, conn, query)

    return gate.run(server.ctx.ledger, server.register, caller, "audit", resolver(ids), act)


VERBS: dict[str, Handler] = {
    "tag": tag,
    "accept": _decide("accept"),
    "reject": _decide("reject"),
    "interview.start": _interview("start"),
    "interview.stop": _interview("stop"),
    "interview.mark": _interview("mark"),
    "export": _export,  # `export ID... --to DIR` and `export run REQ --to DIR`
    "audit": _audit,
    **RETRIEVAL_VERBS,
    "case.conclude": case_conclude,
}
