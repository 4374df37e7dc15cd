"""The gate's side of the dock console (`evidence-agent console`, docs/console.md).

Only the console service's login (`console.login`) may speak as the `console` channel. An
officer logs in there with officer id and PIN; the daemon checks the PIN (agent/access/pins.py)
and hands the console a session ticket, kept here in memory and expiring after
`console.session_timeout_seconds` without use. A console request that acts (tag) names the
ticket, never an officer: the caller becomes Caller(via="console", officer_id=<the ticket's>)
and goes through the one authorisation function like any other front end. Reads for the
console (bays, station health, an officer's own recordings) are answered here.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from typing import Any

from agent.access import gate, pins
from agent.access.gate import Caller, Refused
from agent.daemon.api_params import BadRequest, Server, text

_OFFICER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_TICKETS = 256


class Tickets:
    """Console sessions the daemon issued: ticket -> (officer id, last use, monotonic)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._live: dict[str, tuple[str, float]] = {}
        self.strangers = Strangers()

    def issue(self, officer_id: str) -> str:
        ticket = secrets.token_urlsafe(32)
        with self._lock:
            self._expire()
            if len(self._live) >= MAX_TICKETS:
                oldest = min(self._live, key=lambda k: self._live[k][1])
                del self._live[oldest]
            self._live[ticket] = (officer_id, time.monotonic())
        return ticket

    def officer(self, ticket: str) -> str | None:
        with self._lock:
            self._expire()
            found = self._live.get(ticket)
            if found is None:
                return None
            self._live[ticket] = (found[0], time.monotonic())
            return found[0]

    def drop(self, ticket: str) -> None:
        with self._lock:
            self._live.pop(ticket, None)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.timeout_s
        for k in [k for k, (_o, t) in self._live.items() if t < cutoff]:
            del self._live[k]


class Strangers:
    """Logins for officer ids not active in the register share one back-off (in memory), so
    typing made-up ids at the kiosk cannot grow the custody log faster than it doubles."""

    QUIET_S = 900.0  # this long without such a try starts the count afresh

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures, self._until = 0, 0.0

    def wait(self) -> float:
        with self._lock:
            return max(0.0, self._until - time.monotonic())

    def failed(self, base: float, cap: float) -> float:
        now = time.monotonic()
        with self._lock:
            if now - self._until > self.QUIET_S:
                self._failures = 0
            self._failures += 1
            wait = min(cap, base * 2 ** (self._failures - 1))
            self._until = now + wait
            return wait


class CopyProgress:
    """The copy in progress per recorder (fed by the ingest threads), for the bay tiles."""

    STALE_S = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # serial -> (recording, done, total, first seen monotonic, done then, last update)
        self._now: dict[str, tuple[str, int, int, float, int, float]] = {}

    def update(self, serial: str, recording: str, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            cur = self._now.get(serial)
            t0, d0 = (cur[3], cur[4]) if cur and cur[0] == recording else (now, done)
            self._now[serial] = (recording, done, total, t0, d0, now)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        now, out = time.monotonic(), {}
        with self._lock:
            for serial, (rid, done, total, t0, d0, t1) in self._now.items():
                if done >= total or now - t1 > self.STALE_S:
                    continue
                speed = (done - d0) / (t1 - t0) if t1 > t0 else None
                out[serial] = {
                    "recording": rid,
                    "done_bytes": done,
                    "total_bytes": total,
                    "percent": round(100.0 * done / total, 1) if total else 100.0,
                    "bytes_per_s": round(speed) if speed else None,
                }
        return out


def require_console(server: Server, caller: Caller) -> None:
    want = server.ctx.cfg.console.login
    if caller.login != want:
        raise Refused(
            f"{caller.describe()} is not the dock console's service login ({want!r}, "
            "console.login); only the console may speak for an officer"
        )


def console_caller(server: Server, tickets: Tickets, caller: Caller, ticket: Any) -> Caller:
    """The console acting for the officer behind `ticket` (a request carrying `session`)."""
    require_console(server, caller)
    officer = tickets.officer(ticket) if isinstance(ticket, str) else None
    if officer is None:
        raise Refused("the console session has expired: log in again with officer id and PIN")
    return Caller(via="console", uid=caller.uid, officer_id=officer)


def login(server: Server, tickets: Tickets, caller: Caller, params: dict[str, Any]) -> Any:
    require_console(server, caller)
    officer_id = text(params, "officer_id", required=True, limit=64)
    pin = text(params, "pin", required=True, limit=64)
    if not _OFFICER.match(officer_id):
        raise BadRequest("officer_id: 1-64 characters of A-Z a-z 0-9 _ . -")
    server.register.refresh()
    op = server.register.find(Caller(via="console", officer_id=officer_id))
    eligible = op is not None and op.active and not server.register.error
    cfg = server.ctx.cfg.console
    if not eligible and tickets.strangers.wait() > 0:
        return {"granted": False, "retry_after_s": tickets.strangers.wait()}
    result = pins.login(
        server.ctx.ledger,
        officer_id,
        pin,
        register_hash=op.pin_hash if op is not None else "",
        eligible=eligible,
        backoff=(cfg.pin_backoff_seconds, cfg.pin_backoff_max_seconds),
    )
    if not eligible:
        wait = tickets.strangers.failed(cfg.pin_backoff_seconds, cfg.pin_backoff_max_seconds)
        return {"granted": False, "retry_after_s": wait}
    if not result.ok or op is None:
        return {"granted": False, "retry_after_s": result.retry_after_s}
    return {
        "granted": True,
        "session": tickets.issue(officer_id),
        "officer_id": op.officer_id,
        "name": op.name,
        "roles": list(op.roles),
    }


def logout(server: Server, tickets: Tickets, caller: Caller, params: dict[str, Any]) -> Any:
    require_console(server, caller)
    tickets.drop(text(params, "session", limit=100))
    return {}


def set_pin(server: Server, caller: Caller, params: dict[str, Any], _s: socket.socket) -> Any:
    officer_id = text(params, "officer_id", required=True, limit=64)
    pin = text(params, "pin", required=True, limit=64)
    pins.hash_pin(pin)  # the PIN rules before the gate records a grant
    _known(server, officer_id)

    def act(conn: Any, op: Any, _ids: list[str]) -> Any:
        pins.set_pin(conn, officer_id, pin, actor=f"operator:{op.officer_id}")
        return {"officer_id": officer_id}

    return gate.run(server.ctx.ledger, server.register, caller, "pin.set", lambda _c: [], act)


def unlock(server: Server, caller: Caller, params: dict[str, Any], _s: socket.socket) -> Any:
    officer_id = text(params, "officer_id", required=True, limit=64)
    _known(server, officer_id)

    def act(conn: Any, op: Any, _ids: list[str]) -> Any:
        return {"officer_id": officer_id, "failures": pins.unlock(conn, officer_id, op.officer_id)}

    return gate.run(server.ctx.ledger, server.register, caller, "pin.unlock", lambda _c: [], act)


def _known(server: Server, officer_id: str) -> None:
    server.register.refresh()
    if server.register.find(Caller(via="console", officer_id=officer_id)) is None:
        raise pins.PinError(
            f"officer {officer_id!r} is not in the operator register ({server.register.path}); "
            "add the row first (docs/access.md)"
        )


def _officer(server: Server, caller: Caller, role: str | None = None) -> str:
    """The officer a console read is for: a live ticket of an active operator (with `role`)."""
    if caller.via != "console" or not caller.officer_id:
        raise Refused("this read is for the dock console's logged-in officer (session)")
    server.register.refresh()
    op = server.register.find(caller)
    if op is None or not op.active or server.register.error:
        raise Refused(f"operator {caller.officer_id} is not active in the operator register")
    if role is not None and not op.has(role):
        raise Refused(f"operator {op.officer_id} ({', '.join(op.roles)}) is not a {role}")
    return op.officer_id


def verbs(tickets: Tickets, progress: CopyProgress) -> dict[str, Any]:
    """The console's requests and the admin's PIN requests, as gate handlers."""
    from agent.actions import dockview

    def bays(server: Server, caller: Caller, _p: dict[str, Any], _s: Any) -> Any:
        if caller.via != "console":
            require_console(server, caller)
        live = progress.snapshot()
        bays = dockview.bays(server.ctx)
        for bay in bays:
            bay["copy"] = live.get(bay["serial"]) if bay["state"] == "copying" else None
        return {
            "bays": bays,
            "health": dockview.health(server.ctx),
            "release_after": server.ctx.cfg.ingest.release_after,
        }

    def mine(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
        limit = params.get("limit", 50)
        if not isinstance(limit, int) or not 0 < limit <= 500:
            raise BadRequest("limit: 1-500")
        return dockview.own_recordings(server.ctx, _officer(server, caller), limit)

    def thumbnail(server: Server, caller: Caller, params: dict[str, Any], _s: Any) -> Any:
        return _thumbnail(server, _officer(server, caller), text(params, "id", limit=64))

    def held(server: Server, caller: Caller, _p: dict[str, Any], _s: Any) -> Any:
        _officer(server, caller, "custodian")
        return dockview.held(server.ctx)

    return {
        "console.login": lambda sv, c, p, _s: login(sv, tickets, c, p),
        "console.held": held,
        "console.thumbnail": thumbnail,
        "console.logout": lambda sv, c, p, _s: logout(sv, tickets, c, p),
        "console.bays": bays,
        "console.recordings": mine,
        "pin.set": set_pin,
        "pin.unlock": unlock,
    }


def _thumbnail(server: Server, officer_id: str, ref: str) -> Any:
    """The first frame of an own recording (or any, for a custodian) as base64 JPEG, or None."""
    import base64

    from agent.actions.thumbnail import first_frame_jpeg
    from agent.core.errors import UnknownRecordingError
    from agent.ledger import paths
    from agent.ledger import recordings as rec

    conn = server.ctx.ledger.connect()
    try:
        rid = rec.resolve(conn, ref)
    except UnknownRecordingError:
        return None
    op = server.register.find(Caller(via="console", officer_id=officer_id))
    if officer_id not in gate.owners(conn, rid) and not (op and op.has("custodian")):
        raise Refused(f"recording {rid} is not one of operator {officer_id}'s")
    row = rec.get(conn, rid)
    if row is None or row["spool_removed_at"]:
        return None
    path = paths.spool_file(server.ctx.cfg, row["spool_path"])
    data = (
        first_frame_jpeg(path, server.ctx.keyring) if path is not None and path.is_file() else None
    )
    return base64.b64encode(data).decode() if data else None
