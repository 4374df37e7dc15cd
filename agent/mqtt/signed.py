"""Signed MQTT commands: the envelope, its checks, nonces and idempotency (issue 14, item 1).

A command is `{"body": "<exact UTF-8 JSON text>", "key": "<console key id>", "sig": "<base64>"}`.
The signature is ed25519 over the exact UTF-8 bytes of `body` (no canonicalisation, so any
language can sign). `body` is a JSON object: `station`, `verb`, `at` (ISO-8601 with offset),
`nonce`, optional `id` (request id) and `args` (the command's fields). The station refuses,
in this order: a key that is not a console key id or is in no active register row (unknown
or revoked), a bad signature, another station's id, a verb other than the topic's, a time
outside the window, a nonce already seen (and, per verified key, more than KEY_RATE commands
a second); then the role check goes through the one
authorisation function (agent.access.gate.authorize, `via: mqtt`, the operator from the key).

Only a command that passed all that writes anything: its nonce (kept until its time leaves
the wider window, across restarts) and `access.granted`, in one transaction. Everything
refused goes to the caller's refusal tally, so an unsigned or forged flood costs nothing
permanent.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.access import consolekey, gate
from agent.access.gate import Caller, Register
from agent.access.register import Operator
from agent.core import clock
from agent.core.errors import CommandError
from agent.mqtt.refusals import MAX_DEPTH, Cap, check_depth, clip
from agent.station.context import Context
from agent.station.timesync import clock_synced

ENVELOPE = frozenset({"body", "key", "sig"})
BODY_FIELDS = frozenset({"station", "verb", "at", "nonce", "id", "args"})
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# verb -> action of agent.access.gate (the roles are decided there, nowhere else)
ACTIONS = {
    "tag": "tag",
    "rescan": "rescan",
    "release": "release",
    "priority": "priority",
    "interview_start": "interview.start",
    "interview_stop": "interview.stop",
}
KEY_RATE = 10.0  # commands a second one verified key may send (after the global cap)
KEY_BURST = 60
UNSIGNED = (
    "unsigned commands are refused: send an envelope {{body, key, sig}} signed with your "
    "console key (`evidence-agent send {verb} --key FILE JSON`, docs/mqtt.md); "
    "mqtt.unsigned_commands = true accepts the old unsigned format"
)


def is_envelope(doc: dict[str, Any]) -> bool:
    return set(doc) == ENVELOPE


@dataclass
class Signed:
    """A command whose envelope verified: who signed it and what it asks."""

    key: str
    verb: str
    at: datetime
    nonce: str
    request_id: str | None
    args: dict[str, Any]
    expires: float
    operator: Operator | None = None

    @property
    def args_sha256(self) -> str:
        text = json.dumps(self.args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Verifier:
    def __init__(self, ctx: Context, register: Register) -> None:
        self.ctx, self.register, self.cfg = ctx, register, ctx.cfg.mqtt
        self._caps: dict[str, Cap] = {}  # per verified key; keys come from the register only

    def window(self) -> int:
        if clock_synced():
            return self.cfg.command_window_seconds
        return self.cfg.command_window_unsynced_seconds

    def open(self, verb: str, envelope: dict[str, Any]) -> Signed:
        """Check the envelope and its body; CommandError says what is wrong."""
        body, kid, sig = (envelope.get(k) for k in ("body", "key", "sig"))
        if not (isinstance(body, str) and isinstance(kid, str) and isinstance(sig, str)):
            raise CommandError("envelope fields body, key and sig must be strings")
        if not consolekey.KEY_ID.match(kid):
            raise CommandError(f"key {clip(kid)!r} is not a console key id (ed25519:...)")
        self._known(kid)
        try:
            message = body.encode("utf-8")
        except UnicodeEncodeError:
            raise CommandError("body is not valid UTF-8 text") from None
        if not consolekey.verify(kid, sig, message):
            raise CommandError(f"bad signature for key {kid}: the body was not signed by it")
        if not self._caps.setdefault(kid, Cap(KEY_RATE, KEY_BURST)).admit():
            raise CommandError(
                f"key {kid} sends more than {KEY_RATE:g} commands a second; slow down"
            )
        doc = _parse_body(body)
        return self._check_body(verb, kid, doc)

    def _known(self, kid: str) -> None:
        self.register.refresh()
        if self.register.path is None:
            raise CommandError(
                "no operator register is configured (operators.file), so no console key is "
                "known; see docs/access.md"
            )
        if self.register.error:
            raise CommandError("the operator register is invalid; commands are refused")
        if self.register.find(Caller(via="mqtt", console_key=kid)) is None:
            raise CommandError(
                f"unknown or revoked console key {kid}: not in the operator register "
                "(console_keys column of operators.file)"
            )

    def _check_body(self, verb: str, kid: str, doc: dict[str, Any]) -> Signed:
        extra = sorted(set(doc) - BODY_FIELDS)
        if extra:
            raise CommandError(f"body: unknown field {clip(extra[0])!r}")
        station, body_verb = doc.get("station"), doc.get("verb")
        if station != self.ctx.station_id:
            raise CommandError(
                f"body.station {clip(station)!r} is not this station ({self.ctx.station_id})"
            )
        if body_verb != verb:
            raise CommandError(f"body.verb {clip(body_verb)!r} is not this topic's verb {verb!r}")
        at = self._check_time(doc.get("at"))
        nonce, rid, args = doc.get("nonce"), doc.get("id"), doc.get("args", {})
        if not isinstance(nonce, str) or not NONCE.match(nonce):
            raise CommandError("body.nonce must be 16-64 characters of [A-Za-z0-9_-]")
        if rid is not None and (not isinstance(rid, str) or not REQUEST_ID.match(rid)):
            raise CommandError("body.id must match [A-Za-z0-9_.:-]{1,64}")
        if not isinstance(args, dict) or "id" in args:
            raise CommandError("body.args must be an object (the request id goes in body.id)")
        wide = max(self.cfg.command_window_seconds, self.cfg.command_window_unsynced_seconds)
        expires = max(at.timestamp(), clock.now().timestamp()) + wide
        return Signed(kid, verb, at, nonce, rid, args, expires)

    def _check_time(self, text: object) -> datetime:
        try:
            at = datetime.fromisoformat(text) if isinstance(text, str) else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise CommandError("body.at must be an ISO-8601 time with its offset")
        window = self.window()
        skew = abs((clock.now() - at).total_seconds())
        if skew > window:
            state = "synchronised" if window == self.cfg.command_window_seconds else "unsynced"
            raise CommandError(
                f"body.at {clip(text)} is {skew:.0f} s from the station clock; the window is "
                f"±{window} s (clock {state}): sign it again with the current time"
            )
        return at

    def replayed(self, s: Signed) -> None:
        row = self.ctx.ledger.one(
            "SELECT 1 FROM mqtt_nonces WHERE key = ? AND nonce = ?", (s.key, s.nonce)
        )
        if row is not None:
            raise CommandError(f"replayed command: nonce {s.nonce} of this key was already used")

    def prior(self, s: Signed) -> dict[str, Any] | None:
        """The first reply to the same (key, verb, id) and arguments, if it ran already."""
        if s.request_id is None:
            return None
        row = self.ctx.ledger.one(
            "SELECT args_sha256, reply FROM mqtt_signed_commands"
            " WHERE key = ? AND verb = ? AND request_id = ?",
            (s.key, s.verb, s.request_id),
        )
        if row is None:
            return None
        if row[0] != s.args_sha256:
            raise CommandError(
                f"request id {s.request_id} was already used by this key for {s.verb} with "
                "other arguments; use a new id"
            )
        return dict(json.loads(row[1]))

    def authorize(self, s: Signed, ids: list[str], typed: str | None) -> Operator:
        """Roles through the one authorisation function; on a grant, the nonce is spent and
        `access.granted` written in one transaction."""
        caller = Caller(via="mqtt", console_key=s.key, typed=typed)
        action = ACTIONS[s.verb]
        decision = gate.authorize(self.register, self.ctx.ledger.connect(), caller, action, ids)
        if not decision.allowed or decision.operator is None:
            raise CommandError(decision.reason)
        with self.ctx.ledger.tx() as conn:
            now = clock.now().timestamp()
            conn.execute("DELETE FROM mqtt_nonces WHERE expires < ?", (now,))
            cur = conn.execute(
                "INSERT OR IGNORE INTO mqtt_nonces(key, nonce, expires) VALUES(?,?,?)",
                (s.key, s.nonce, s.expires),
            )
            if cur.rowcount == 0:
                raise CommandError(f"replayed command: nonce {s.nonce} was already used")
            gate.record_grant(conn, caller, action, decision.operator, ids)
        s.operator = decision.operator
        return decision.operator


def remember(conn: Any, s: Signed, reply: dict[str, Any]) -> None:
    """Inside the transaction of the command's custody record: its reply, for idempotency."""
    if s.request_id is None:
        return
    conn.execute(
        "INSERT OR IGNORE INTO mqtt_signed_commands(key, verb, request_id, args_sha256,"
        " received_at, reply) VALUES(?,?,?,?,?,?)",
        (
            s.key,
            s.verb,
            s.request_id,
            s.args_sha256,
            clock.iso(clock.now()),
            json.dumps(reply, ensure_ascii=False),
        ),
    )


def _parse_body(body: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise CommandError(f"body is not valid JSON: {clip(exc, 200)}") from None
    except RecursionError:
        raise CommandError(f"body nests JSON deeper than {MAX_DEPTH} levels") from None
    if not check_depth(doc):
        raise CommandError(f"body nests JSON deeper than {MAX_DEPTH} levels")
    if not isinstance(doc, dict):
        raise CommandError(f"body must be a JSON object, got {type(doc).__name__}")
    return doc
