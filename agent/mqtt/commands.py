"""Commands on `<prefix>/<station>/cmd/<verb>`: check, run, record, reply.

Every message gets exactly one JSON reply on `<prefix>/<station>/reply/<verb>` (and on the
MQTT 5 response topic with the correlation data, when the sender gave one) and one custody
event `command.mqtt` naming its origin, whatever it contained: bad JSON, an unknown verb,
wrong types or a refused client give `"ok": false` with the problem, never a crash. Commands
run on their own thread, so a slow one (a release erasing files) never stalls paho's network
thread, and they run one at a time, in arrival order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from agent.core import clock
from agent.core.errors import CommandError
from agent.ledger import custody
from agent.mqtt.connection import Connection
from agent.mqtt.handlers import HANDLERS, Env, Origin
from agent.mqtt.state import now_local
from agent.mqtt.topics import VERBS, Topics
from agent.station.context import Context

logger = logging.getLogger(__name__)

CLIENT_PROPERTY = "client"  # MQTT 5 user property naming the sender (mqtt.allowed_clients)
MAX_PAYLOAD = 256 * 1024
KEEP_REPLIES = timedelta(days=7)  # how long a request id is remembered


def explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(payload)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{where}: {msg}")
    return "invalid command: " + "; ".join(parts)


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

    def on_message(self, msg: mqtt.MQTTMessage) -> None:  # paho's thread: hand over only
        try:
            self.queue.put_nowait(msg)
        except queue.Full:
            logger.error("MQTT: command queue full; dropped a command on %s", msg.topic)

    def step(self, timeout: float = 0.5) -> None:
        try:
            msg = self.queue.get(timeout=timeout)
        except queue.Empty:
            return
        self.handle(msg)

    def handle(self, msg: mqtt.MQTTMessage) -> dict[str, Any]:
        verb = self.topics.verb_of(msg.topic) or msg.topic
        client = _user_property(msg, CLIENT_PROPERTY)
        reply, body = self._execute(verb, bytes(msg.payload), client)
        self._record(verb, client, body, bytes(msg.payload), reply)
        self._send(verb, reply, getattr(msg, "properties", None))
        level = logging.INFO if reply["ok"] else logging.WARNING
        logger.log(
            level,
            "MQTT command %s from %s: %s",
            verb,
            client or "unnamed client",
            "ok" if reply["ok"] else reply["error"],
        )
        return reply

    # --- checks and execution ---------------------------------------------------------------

    def _execute(
        self, verb: str, payload: bytes, client: str | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        body: dict[str, Any] | None = None
        request_id: str | None = None
        try:
            self._authorize(client)
            body = _parse(payload)
            rid = body.get("id")
            request_id = rid if isinstance(rid, str) and len(rid) <= 64 else None
            if request_id is not None:
                prior = self._prior_reply(request_id)
                if prior is not None:
                    return {**prior, "duplicate": True}, body
            handler = HANDLERS.get(verb)
            if handler is None:
                raise CommandError(f"unknown command {verb!r}; use one of {', '.join(VERBS)}")
            try:
                cmd = handler.model.model_validate(body)
            except ValidationError as exc:
                raise CommandError(explain(exc)) from None
            result = handler.run(cmd, Env(self.ctx, Origin(client, request_id), self.rescan))
            return self._reply(verb, request_id, result=result), body
        except CommandError as exc:
            return self._reply(verb, request_id, error=str(exc)), body
        except Exception as exc:  # noqa: BLE001 - a command must never take the agent down
            logger.exception("MQTT command %s failed", verb)
            return self._reply(verb, request_id, error=f"internal error: {exc}"), body

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
            raise CommandError(f"client {client!r} is not in mqtt.allowed_clients")

    def _reply(
        self,
        verb: str,
        request_id: str | None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        return {
            "station": self.ctx.station_id,
            "verb": verb,
            "id": request_id,
            "ok": error is None,
            "result": result,
            "error": error,
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
        payload: bytes,
        reply: dict[str, Any],
    ) -> None:
        operator = body.get("operator") if body else None
        actor = operator if isinstance(operator, str) and operator else f"mqtt:{client or '?'}"
        event: dict[str, Any] = {
            "verb": verb,
            "origin": "mqtt",
            "client": client,
            "request_id": reply["id"],
            "ok": reply["ok"],
            "error": reply["error"],
            "duplicate": bool(reply.get("duplicate")),
        }
        if body is None:  # unreadable: keep a fingerprint, not the bytes
            event["payload_sha256"] = hashlib.sha256(payload).hexdigest()
            event["payload_bytes"] = len(payload)
        else:
            event["args"] = {k: v for k, v in body.items() if k not in ("id", "operator")}
        with self.ctx.ledger.tx() as conn:
            custody.append(conn, "command.mqtt", event, actor=actor[:80])
            # Only what ran is remembered: a refused or invalid command changed nothing, so
            # the sender may fix it and send it again under the same id.
            if reply["id"] is not None and reply["ok"] and not reply.get("duplicate"):
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
        text = json.dumps(reply, ensure_ascii=False)
        self.conn.publish(self.topics.reply(verb), text, qos=1)
        response_topic = getattr(props, "ResponseTopic", None)
        if not response_topic:
            return
        if any(c in response_topic for c in "+#") or len(response_topic) > 512:
            logger.warning("MQTT: ignoring invalid response topic %r", response_topic)
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
        raise CommandError(f"payload is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CommandError(f"payload must be a JSON object, got {type(body).__name__}")
    return body
