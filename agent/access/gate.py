"""The one authorisation function every front end uses (API socket, MQTT, dock console).

`authorize()` decides by role; `Gate.run()` wraps an action so that a granted request and the
change it makes are one ledger transaction with an `access.granted` custody event naming the
authenticated operator and `via`, and a refusal is recorded as `access.refused` in its own
transaction before the caller sees exit 77. Identity is never typed: the caller is the peer
uid of the socket (or a verified console key / officer id + PIN); a typed `--operator` that
differs from it is itself a reason to refuse.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from agent.access.register import Operator, RegisterError, load_register
from agent.core.errors import AgentError
from agent.ledger import custody, events
from agent.ledger.db import Ledger

logger = logging.getLogger(__name__)

EX_NOPERM = 77
VIAS = ("cli", "console", "mqtt")
_REGISTER_KEY = "operators.register"
_ERROR_KEY = "operators.error"

# action -> roles that may do it on any recording; "officer" may do OWN_ONLY ones on own ones.
ANY = {
    "tag": ("custodian",),
    "accept": ("custodian",),
    "reject": ("custodian",),
    "release": ("custodian",),
    "priority": ("custodian",),
    "export": ("custodian",),  # the one-step path (agent/access/retrieval.py says when)
    "export.request": ("custodian",),
    "export.approve": ("supervisor",),
    "export.refuse": ("supervisor",),
    "export.run": ("custodian",),  # and only the requester (agent/access/retrieval.py)
    "export.return": ("custodian",),
    "export.list": ("custodian", "supervisor", "admin"),
    "audit": ("supervisor", "admin"),
    "case.conclude": ("custodian",),  # a case's conclusion date (its file is due from it)
    "interview.start": ("officer", "custodian"),
    "interview.stop": ("officer", "custodian"),
    "interview.mark": ("officer", "custodian"),
    "rescan": ("officer", "custodian", "supervisor", "admin"),  # MQTT `rescan`: harmless
    "pin.set": ("admin",),  # dock console PINs (agent/access/pins.py)
    "pin.unlock": ("admin",),
}
OWN_ONLY = {"tag": ("officer",), "audit": ("officer",)}

T = TypeVar("T")


class Refused(AgentError):
    """The gate refused a request; the message says why and what to do."""

    exit_code = EX_NOPERM


@dataclass
class Caller:
    """Who asks, as authenticated by the front end (never as typed)."""

    via: str
    uid: int | None = None
    login: str | None = None
    console_key: str | None = None  # mqtt: the verified console key's fingerprint
    officer_id: str | None = None  # console: officer id verified with the PIN
    typed: str | None = None  # --operator / "operator" field, checked, never trusted

    def describe(self) -> str:
        if self.login is not None:
            return f"uid {self.uid} ({self.login})"
        if self.console_key:
            return f"console key {self.console_key}"
        return f"officer {self.officer_id}" if self.officer_id else "an unknown caller"

    def actor(self) -> str:
        return f"uid:{self.uid}" if self.uid is not None else f"{self.via}:unknown"


@dataclass
class Decision:
    allowed: bool
    operator: Operator | None
    reason: str = ""
    recordings: list[str] = field(default_factory=list)


class Register:
    """The register as this process sees it: re-read when the file changes, never last-good."""

    def __init__(self, path: Path | None, ledger: Ledger) -> None:
        self.path, self.ledger = path, ledger
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self.operators: list[Operator] = []
        self.error: str | None = None

    def refresh(self) -> None:
        if self.path is None:
            return
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (-1, -1)
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                self.operators, digest = load_register(self.path)
                self.error = None
            except RegisterError as exc:
                self.operators, self.error = [], str(exc)
                logger.error("%s: gated actions are refused until it is fixed", exc)
                self._record_error(str(exc))
                return
            self._record_change(digest)

    def _record_error(self, message: str) -> None:
        with self.ledger.tx() as conn:
            if self.ledger.get_kv(_ERROR_KEY) == message:
                return  # the same broken file: one alarm per edit, not per request
            self.ledger.set_kv(conn, _ERROR_KEY, message)
            custody.append(conn, "operators.invalid", {"file": str(self.path), "error": message})
            events.emit(conn, "access.register_invalid", file=str(self.path), error=message)

    def _record_change(self, digest: str) -> None:
        doc = {o.officer_id: o.public() for o in self.operators}
        with self.ledger.tx() as conn:
            self.ledger.set_kv(conn, _ERROR_KEY, "")
            raw = self.ledger.get_kv(_REGISTER_KEY)
            before = json.loads(raw)["operators"] if raw else {}
            if raw and json.loads(raw).get("sha256") == digest:
                return
            changed = sorted(k for k in doc if k in before and before[k] != doc[k])
            payload = {
                "file": str(self.path),
                "sha256": digest,
                "added": sorted(set(doc) - set(before)),
                "removed": sorted(set(before) - set(doc)),
                "changed": changed,
                "operators": len(doc),
            }
            custody.append(conn, "operators.changed", payload)
            body = {"sha256": digest, "operators": doc}
            self.ledger.set_kv(conn, _REGISTER_KEY, json.dumps(body, ensure_ascii=False))

    def find(self, caller: Caller) -> Operator | None:
        for op in self.operators:
            if caller.login is not None and op.login == caller.login:
                return op
            if caller.console_key and caller.console_key in op.console_keys:
                return op
            if caller.login is None and caller.officer_id and op.officer_id == caller.officer_id:
                return op
        return None


def known_operators(ledger: Ledger) -> dict[str, dict[str, object]]:
    """The register as last loaded (officer id -> public fields), for names in the audit."""
    raw = ledger.get_kv(_REGISTER_KEY)
    return dict(json.loads(raw)["operators"]) if raw else {}


def owners(conn: sqlite3.Connection, rid: str) -> set[str]:
    """Officer ids a recording belongs to: the recorder's wearer and the collector (采集人)."""
    row = conn.execute(
        "SELECT r.officer_id, m.fields FROM recordings r LEFT JOIN metadata_versions m"
        " ON m.recording_id = r.id AND m.version = r.metadata_version WHERE r.id = ?",
        (rid,),
    ).fetchone()
    if row is None:
        return set()
    out = {row["officer_id"]} if row["officer_id"] else set()
    if row["fields"]:
        collector = json.loads(row["fields"]).get("collector")
        if collector:
            out.add(str(collector))
    return out


def _who(register: Register, caller: Caller) -> tuple[Operator | None, str]:
    if register.path is None:
        return None, (
            "no operator register is configured: set operators.file in the config "
            "(see docs/access.md); gated actions are refused until then"
        )
    register.refresh()
    if register.error:
        return (
            None,
            f"the operator register is invalid, so gated actions are refused: {register.error}",
        )
    op = register.find(caller)
    if op is None:
        return None, (
            f"{caller.describe()} is not in the operator register ({register.path}); "
            "ask the station admin to add you (docs/access.md)"
        )
    if not op.active:
        return None, f"operator {op.officer_id} ({op.login}) is not active in {register.path}"
    typed = (caller.typed or "").strip()
    if typed and typed not in (op.officer_id, op.login):
        return op, (
            f"--operator {typed!r} is not you: you are authenticated as operator "
            f"{op.officer_id} ({op.login}); drop --operator or give your own id"
        )
    return op, ""


def authorize(
    register: Register,
    conn: sqlite3.Connection,
    caller: Caller,
    action: str,
    recordings: list[str],
) -> Decision:
    """May `caller` do `action` on `recordings`? The one place roles are decided."""
    op, why = _who(register, caller)
    if op is None or why:
        return Decision(False, op, why, recordings)
    if action not in ANY:
        return Decision(False, op, f"unknown action {action!r}", recordings)
    if any(op.has(r) for r in ANY[action]):
        return Decision(True, op, "", recordings)
    own_roles = OWN_ONLY.get(action, ())
    if any(op.has(r) for r in own_roles) and recordings:
        foreign = [rid for rid in recordings if op.officer_id not in owners(conn, rid)]
        if not foreign:
            return Decision(True, op, "", recordings)
        return Decision(
            False,
            op,
            f"operator {op.officer_id} may {action} only own recordings (worn or collected by "
            f"{op.officer_id}); not: {', '.join(foreign)}",
            recordings,
        )
    need = ", ".join(ANY[action] + own_roles)
    return Decision(
        False,
        op,
        f"operator {op.officer_id} ({', '.join(op.roles)}) may not {action}: needs role {need}",
        recordings,
    )


def record_refusal(ledger: Ledger, caller: Caller, action: str, decision: Decision) -> None:
    """`access.refused` in its own transaction (the request's own one was rolled back)."""
    op = decision.operator
    with ledger.tx() as conn:
        payload = {
            "action": action,
            "via": caller.via,
            "operator": op.officer_id if op else None,
            "uid": caller.uid,
            "login": caller.login,
            "typed_operator": caller.typed,
            "recordings": decision.recordings,
            "reason": decision.reason,
        }
        custody.append(
            conn,
            "access.refused",
            payload,
            actor=f"operator:{op.officer_id}" if op else caller.actor(),
        )


def record_grant(
    conn: sqlite3.Connection, caller: Caller, action: str, op: Operator, recordings: list[str]
) -> None:
    custody.append(
        conn,
        "access.granted",
        {
            "action": action,
            "via": caller.via,
            "operator": op.officer_id,
            "uid": caller.uid,
            "login": caller.login,
            "roles": list(op.roles),
            "recordings": recordings,
        },
        actor=f"operator:{op.officer_id}",
    )  # recording_id stays empty: the recordings are in the payload, found by the audit


Resolve = Callable[[sqlite3.Connection], list[str]]
Act = Callable[[sqlite3.Connection, Operator, list[str]], T]
# A rule beyond roles (the two-person rule of retrievals): "" allows, else the refusal reason.
Check = Callable[[sqlite3.Connection, Operator, list[str]], str]


def run(
    ledger: Ledger,
    register: Register,
    caller: Caller,
    action: str,
    resolve: Resolve,
    act: Act[T],
    check: Check | None = None,
) -> T:
    """Authorise and act in one transaction; a refusal is recorded and raised as Refused.

    For actions that wait on other threads (interview sessions) or on the client (exports),
    `act` only records the grant's own events and the work follows after the commit.
    """
    if caller.via not in VIAS:
        raise Refused(f"unknown front end {caller.via!r}")
    register.refresh()  # outside the transaction: it may write its own custody event
    with ledger.tx() as conn:
        ids = resolve(conn)
        decision = authorize(register, conn, caller, action, ids)
        if decision.allowed and decision.operator is not None and check is not None:
            why = check(conn, decision.operator, ids)
            if why:
                decision = Decision(False, decision.operator, why, ids)
        if decision.allowed and decision.operator is not None:
            record_grant(conn, caller, action, decision.operator, ids)
            return act(conn, decision.operator, ids)
    record_refusal(ledger, caller, action, decision)
    raise Refused(decision.reason)


def grant(
    ledger: Ledger, register: Register, caller: Caller, action: str, resolve: Resolve
) -> tuple[Operator, list[str]]:
    """`run` with nothing but the grant itself inside the transaction."""
    return run(ledger, register, caller, action, resolve, lambda _c, op, ids: (op, ids))
