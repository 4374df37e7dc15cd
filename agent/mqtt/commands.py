"""Commands on `<prefix>/<station>/cmd/<verb>`: check, run, record, reply.

Every command that reaches the processor gets one JSON reply on
`<prefix>/<station>/reply/<verb>` (and on the MQTT 5 response topic with the correlation data,
when the sender named one under that same `reply/` prefix): bad JSON, nested JSON, an unknown
verb, wrong types, a refused client or a retained publish give `"ok": false` with the problem
(untrusted values clipped), never a crash. A command that ran is one custody event
`command.mqtt`; everything refused, malformed or dropped over the global cap is counted in a
`RefusalTally` that becomes at most one custody event `command.refused` a minute (see
refusals.py), so a flood costs nothing permanent. Retained commands are never acted on: the
subscription uses retain handling 2 (nothing retained on subscribe) and Retain As Published,
so a live `retain=1` publish is seen as retained and refused. Commands are signed envelopes
(signed.py: console key -> operator -> the one authorisation function); unsigned payloads
only with `mqtt.unsigned_commands = true`. Commands run on their own thread, one at a time,
in arrival order, so a slow one never stalls paho's network thread.
"""

from __future__ import annotations

import json
import logging
import queue
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from agent.access.gate import Register
from agent.core import clock
from agent.core.errors import AgentError, CommandError
from agent.ledger import custody
from agent.ledger import recordings as rec
from agent.mqtt.connection import Connection
from agent.mqtt.handlers import HANDLERS, Env, Origin
from agent.mqtt.refusals import MAX_DEPTH, Cap, RefusalTally, check_depth, clip
from agent.mqtt.signed import UNSIGNED, Signed, Verifier, is_envelope, remember
from agent.mqtt.state import now_local
from agent.mqtt.topics import VERBS, Topics
from agent.mqtt.wire import finish
from agent.station.context import Context

logger = logging.getLogger(__name__)

CLIENT_PROPERTY = "client"  # MQTT 5 user property naming the sender (mqtt.allowed_clients)
MAX_PAYLOAD = 32 * 1024  # commands are small; the broker drops > MAX_PACKET_BYTES anyway
RETAINED = (
    "retained commands are refused (a retained message would run again on every restart); "
    "clear it with: mosquitto_pub -t {topic} -r -n"
)
KEEP_REPLIES = timedelta(days=7)  # how long a request id is remembered


def explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(payload)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{clip(where)}: {clip(msg, 200)}")
    return clip("invalid command: " + "; ".join(parts[:10]), 1000)


def _user_property(msg: mqtt.MQTTMessage, name: str) -> str | None:
    props = getattr(msg, "properties", None)
    for key, value in getattr(props, "UserProperty", None) or []:
        if key == name:
            return str(value)
    return None


class CommandProcessor:
    def __init__(self, ctx: Context, conn: Connection, topics: Topics, rescan: Any) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg.mqtt
        self.conn = conn
        self.topics = topics
        self.rescan = rescan
        self.queue: queue.Queue[mqtt.MQTTMessage] = queue.Queue(maxsize=1000)
        self.cap = Cap()
        self.refusals = RefusalTally()
        self.verifier = Verifier(ctx, Register(ctx.cfg.operators.file, ctx.ledger))

    def on_message(self, msg: mqtt.MQTTMessage) -> None:  # paho's thread: hand over only
        if self.cap.admit():
            try:
                self.queue.put_nowait(msg)
                return
            except queue.Full:
                pass
        verb = self.topics.verb_of(msg.topic) or msg.topic
        client = _user_property(msg, CLIENT_PROPERTY)
        if self.refusals.add(now_local(self.ctx), verb, client, bytes(msg.payload), dropped=True):
            logger.warning("MQTT: commands arrive faster than the cap; dropping (counted)")

    def step(self, timeout: float = 0.5) -> None:
        try:
            msg = self.queue.get(timeout=timeout)
        except queue.Empty:
            msg = None
        if msg is not None:
            self.handle(msg)
        if self.refusals.due():
            self.flush()

    def flush(self) -> None:
        """Write the refusals counted so far as one custody event (also at shutdown)."""
        event = self.refusals.take(now_local(self.ctx))
        if event is None:
            return
        with self.ctx.ledger.tx() as conn:
            custody.append(conn, "command.refused", event, actor="mqtt")
        logger.warning(
            "MQTT: recorded %d refused and %d dropped command(s) in one custody event",
            event["refused"],
            event["dropped_over_cap"],
        )

    def handle(self, msg: mqtt.MQTTMessage) -> dict[str, Any]:
        verb = self.topics.verb_of(msg.topic) or msg.topic
        client = _user_property(msg, CLIENT_PROPERTY)
        payload = bytes(msg.payload)
        if msg.retain and not payload:
            return {}  # someone clearing a retained command: nothing to run or answer
        signed: Signed | None = None
        if msg.retain:
            reply = self._reply(verb, None, error=RETAINED.format(topic=clip(msg.topic, 300)))
            body = None
        else:
            reply, body, signed = self._execute(verb, payload, client)
        if reply["ok"] and not reply.get("duplicate"):
            self._record(verb, client, body, reply, signed)
            logger.info("MQTT command %s from %s: ok", clip(verb), clip(client or "-"))
        else:
            claimed = client or _claimed_operator(body)
            if self.refusals.add(reply["at"], verb, claimed, payload):
                logger.warning(
                    "MQTT command %s from %s refused: %s (further refusals this minute are "
                    "counted, not logged)",
                    clip(verb),
                    clip(claimed or "-"),
                    reply["error"] or "duplicate",
                )
        self._send(verb, reply, getattr(msg, "properties", None))
        return reply

    # --- checks and execution ---------------------------------------------------------------

    def _execute(
        self, verb: str, payload: bytes, client: str | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None, Signed | None]:
        body: dict[str, Any] | None = None
        request_id: str | None = None
        try:
            self._authorize(client)
            body = _parse(payload)
            if is_envelope(body):
                return self._execute_signed(verb, body, client)
            if not self.cfg.unsigned_commands:
                raise CommandError(UNSIGNED.format(verb=clip(verb)))
            rid = body.get("id")
            request_id = rid if isinstance(rid, str) and len(rid) <= 64 else None
            if request_id is not None:
                prior = self._prior_reply(request_id)
                if prior is not None:
                    return {**prior, "duplicate": True}, body, None
            handler = HANDLERS.get(verb)
            if handler is None:
                raise CommandError(f"unknown command {clip(verb)!r}; use one of {', '.join(VERBS)}")
            try:
                cmd = handler.model.model_validate(body)
            except ValidationError as exc:
                raise CommandError(explain(exc)) from None
            result = handler.run(cmd, Env(self.ctx, Origin(client, request_id), self.rescan))
            return self._reply(verb, request_id, result=result), body, None
        except CommandError as exc:
            return self._reply(verb, request_id, error=str(exc)), body, None
        except Exception as exc:  # noqa: BLE001 - a command must never take the agent down
            logger.exception("MQTT command %s failed", verb)
            error = clip(f"internal error: {exc}", 200)
            return self._reply(verb, request_id, error=error), body, None

    def _execute_signed(
        self, verb: str, envelope: dict[str, Any], client: str | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None, Signed | None]:
        """Verify, check roles through the gate's authorize(), run (errors: CommandError)."""
        signed = self.verifier.open(verb, envelope)
        rid = signed.request_id
        try:
            self.verifier.replayed(signed)
            prior = self.verifier.prior(signed)
            if prior is not None:
                return {**prior, "duplicate": True}, envelope, signed
            handler = HANDLERS.get(verb)
            if handler is None:
                raise CommandError(f"unknown command {clip(verb)!r}; use one of {', '.join(VERBS)}")
            args = dict(signed.args)
            typed = args.pop("operator", None)
            args["operator"] = "?"  # the model's own check; the real operator comes from the key
            try:
                handler.model.model_validate(args)
            except ValidationError as exc:
                raise CommandError(explain(exc)) from None
            ids = self._resolve(args.get("recordings"))
            op = self.verifier.authorize(signed, ids, typed if isinstance(typed, str) else None)
            cmd = handler.model.model_validate({**args, "operator": op.officer_id})
            origin = Origin(client, rid, key=signed.key)
            result = handler.run(cmd, Env(self.ctx, origin, self.rescan))
            return self._reply(verb, rid, result=result), envelope, signed
        except CommandError as exc:
            return self._reply(verb, rid, error=str(exc)), envelope, signed

    def _resolve(self, refs: Any) -> list[str]:
        """Recording references as ids, for the own-recordings rule of authorize()."""
        if not isinstance(refs, list):
            return []
        conn = self.ctx.ledger.connect()
        try:
            return list(dict.fromkeys(rec.resolve(conn, str(r)) for r in refs))
        except AgentError as exc:  # UnknownRecordingError: names the reference
            raise CommandError(clip(str(exc), 300)) from None

    def _authorize(self, client: str | None) -> None:
        if not self.cfg.commands_enabled:
            raise CommandError(
                "commands are disabled on this station (mqtt.commands_enabled = false)"
            )
        allowed = self.cfg.allowed_clients
        if allowed and client is None:
            raise CommandError(
                f"this station takes commands only from mqtt.allowed_clients; send an MQTT 5 "
                f"user property {CLIENT_PROPERTY!r} naming the client"
            )
        if allowed and client not in allowed:
            raise CommandError(f"client {clip(client)!r} is not in mqtt.allowed_clients")

    def _reply(
        self,
        verb: str,
        request_id: str | None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        return {
            "station": self.ctx.station_id,
            "verb": clip(verb),
            "id": request_id,
            "ok": error is None,
            "result": result,
            "error": None if error is None else clip(error, 1000),
            "at": now_local(self.ctx),
        }

    def _prior_reply(self, request_id: str) -> dict[str, Any] | None:
        row = self.ctx.ledger.one(
            "SELECT reply FROM mqtt_commands WHERE request_id = ?", (request_id,)
        )
        return None if row is None else dict(json.loads(row[0]))

    # --- custody and reply ------------------------------------------------------------------

    def _record(
        self,
        verb: str,
        client: str | None,
        body: dict[str, Any] | None,
        reply: dict[str, Any],
        signed: Signed | None = None,
    ) -> None:
        """Custody for a command that ran (refusals go to the tally instead)."""
        operator = body.get("operator") if body else None
        if signed is not None and signed.operator is not None:
            operator, body = signed.operator.officer_id, signed.args
        actor = operator if isinstance(operator, str) and operator else f"mqtt:{client or '?'}"
        event: dict[str, Any] = {
            "verb": verb,
            "origin": "mqtt",
            "via": "mqtt",
            "client": client,
            "request_id": reply["id"],
            "ok": reply["ok"],
            "error": reply["error"],
            "duplicate": False,
        }
        if signed is not None:
            event.update(signed=True, key=signed.key, operator=operator, nonce=signed.nonce)
        if body is not None:
            event["args"] = {k: v for k, v in body.items() if k not in ("id", "operator")}
        with self.ctx.ledger.tx() as conn:
            custody.append(conn, "command.mqtt", event, actor=actor[:80])
            # Only what ran is remembered: a refused or invalid command changed nothing, so
            # the sender may fix it and send it again under the same id.
            if signed is not None:
                remember(conn, signed, reply)
            elif reply["id"] is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO mqtt_commands(request_id, verb, client, received_at,"
                    " ok, reply) VALUES(?,?,?,?,?,?)",
                    (
                        reply["id"],
                        verb,
                        client,
                        clock.iso(clock.now()),
                        int(reply["ok"]),
                        json.dumps(reply, ensure_ascii=False),
                    ),
                )
            cutoff = clock.iso(clock.now() - KEEP_REPLIES)
            conn.execute("DELETE FROM mqtt_commands WHERE received_at < ?", (cutoff,))

    def _send(self, verb: str, reply: dict[str, Any], props: Properties | None) -> None:
        text = json.dumps(finish(self.ctx, reply), ensure_ascii=False)
        self.conn.publish(self.topics.reply(verb), text, qos=1)
        response_topic = getattr(props, "ResponseTopic", None)
        if not response_topic:
            return
        own = self.topics.reply_prefix
        if (
            not str(response_topic).startswith(own)
            or any(c in response_topic for c in "+#")
            or len(response_topic) > 512
        ):
            logger.debug(
                "MQTT: response topic %s is not under %s; not used", clip(response_topic), own
            )
            return
        out = Properties(PacketTypes.PUBLISH)
        correlation = getattr(props, "CorrelationData", None)
        if correlation is not None:
            out.CorrelationData = correlation
        self.conn.publish(response_topic, text, qos=1, properties=out)


def _parse(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"payload too large ({len(payload)} bytes; at most {MAX_PAYLOAD})")
    if not payload.strip():
        return {}
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"payload is not valid UTF-8 JSON: {clip(exc, 200)}") from None
    except RecursionError:  # deeper than the parser's stack: the same refusal as below
        raise CommandError(f"payload nests JSON deeper than {MAX_DEPTH} levels") from None
    if not check_depth(body):
        raise CommandError(f"payload nests JSON deeper than {MAX_DEPTH} levels")
    if not isinstance(body, dict):
        raise CommandError(f"payload must be a JSON object, got {type(body).__name__}")
    return body


def _claimed_operator(body: dict[str, Any] | None) -> str | None:
    """The sender a refused command claims: the envelope's key, else the payload's operator."""
    operator = (body.get("key") or body.get("operator")) if body else None
    return operator if isinstance(operator, str) else None
