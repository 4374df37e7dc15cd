"""`evidence-agent keys console-new` and `evidence-agent send`: sign MQTT commands from a shell.

`keys console-new --out DIR` writes a console key pair (DIR/console.key, mode 0600, and
DIR/console.pub) and prints the key id to put in the operator register's `console_keys`
column. `send VERB --key FILE JSON` wraps JSON (the command's arguments) in a signed body
(station, verb, time, nonce, id), publishes the envelope to the configured broker, waits for
the station's reply on a response topic under its own `reply/` prefix and prints it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
EX_USAGE, EX_UNAVAILABLE = 64, 69


def cmd_console_new(args: argparse.Namespace) -> int:
    """`keys console-new --out DIR` (the `keys` parser lives in agent.cli.keys)."""
    from agent.access import consolekey

    if not args.out:
        print("evidence-agent: keys console-new needs --out DIR", file=sys.stderr)
        return EX_USAGE

    path, kid = consolekey.create(Path(args.out))
    print(kid)
    print(
        f"private key: {path} (keep it on the console, mode 0600); add the line above to "
        "your row's console_keys column of the operator register (operators.file)",
        file=sys.stderr,
    )
    return 0


def envelope(key: Any, station: str, verb: str, args: dict[str, Any], rid: str | None) -> str:
    """The signed envelope, as text: the signature covers exactly the bytes of `body`."""
    from agent.access import consolekey
    from agent.core import clock

    body_doc: dict[str, Any] = {
        "station": station,
        "verb": verb,
        "at": clock.iso(clock.now()),
        "nonce": secrets.token_urlsafe(18),
    }
    if rid:
        body_doc["id"] = rid
    body_doc["args"] = args
    body = json.dumps(body_doc, ensure_ascii=False)
    sig = consolekey.sign(key, body.encode("utf-8"))
    kid = consolekey.key_id(key.public_key())
    return json.dumps({"body": body, "key": kid, "sig": sig}, ensure_ascii=False)


def cmd_send(args: argparse.Namespace) -> int:
    from agent.access import consolekey
    from agent.config import loader as config_mod
    from agent.mqtt.topics import VERBS

    if args.verb not in VERBS:
        print(
            f"evidence-agent: unknown verb {args.verb!r}; use one of {', '.join(VERBS)}",
            file=sys.stderr,
        )
        return EX_USAGE
    try:
        doc = json.loads(args.json)
    except json.JSONDecodeError as exc:
        print(f"evidence-agent: JSON argument: {exc}", file=sys.stderr)
        return EX_USAGE
    if not isinstance(doc, dict):
        print("evidence-agent: JSON argument must be an object of arguments", file=sys.stderr)
        return EX_USAGE
    cfg = config_mod.load(args.config)
    if not cfg.mqtt.url:
        print(
            "evidence-agent: mqtt.url is not set in the config; no broker to send to",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    key = consolekey.load_private(Path(args.key))
    rid = args.id or doc.pop("id", None) or "send-" + secrets.token_hex(6)
    text = envelope(key, args.station or cfg.station.id, args.verb, doc, rid)
    reply = _publish(cfg, args.station or cfg.station.id, args.verb, text, args.timeout)
    if reply is None:
        print(
            f"evidence-agent: no reply within {args.timeout} s from {cfg.mqtt.url} (is the "
            "station online, with mqtt.commands_enabled = true?)",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    print(json.dumps(reply, ensure_ascii=False, indent=2))
    return 0 if reply.get("ok") else 1


def _publish(cfg: Any, station: str, verb: str, text: str, timeout: float) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from agent.core.errors import AgentError
    from agent.mqtt import secrets as mqtt_secrets
    from agent.mqtt.connection import parse_url, tls_context
    from agent.mqtt.topics import Topics

    topics = Topics(cfg.mqtt.topic_prefix, station)
    addr = parse_url(cfg.mqtt.url)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if addr.tls:
        client.tls_set_context(tls_context(cfg))
    try:
        creds = mqtt_secrets.load(cfg.credentials.file)
    except AgentError:
        creds = None  # an operator may not read the station's credentials: anonymous
    if creds is not None and creds.username:
        client.username_pw_set(creds.username, creds.password)
    response = f"{topics.reply_prefix}send-{secrets.token_hex(6)}"
    got: list[Any] = []
    done, subscribed = threading.Event(), threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        try:
            got.append(json.loads(msg.payload))
        except ValueError:
            return
        done.set()

    client.on_message = on_message
    client.connect(addr.host, addr.port, keepalive=30)
    client.loop_start()
    try:
        client.subscribe(response, qos=1)
        if not subscribed.wait(timeout):
            return None
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = response
        props.CorrelationData = response.encode()
        client.publish(f"{topics.base}/cmd/{verb}", text, qos=1, properties=props)
        return got[0] if done.wait(timeout) else None
    finally:
        client.disconnect()
        client.loop_stop()


def add_parsers(add: Add) -> None:
    sp = add("send", cmd_send, "sign a command with a console key, publish it, print the reply")
    sp.add_argument("verb", help="tag, rescan, release, priority, interview_start, interview_stop")
    sp.add_argument("json", metavar="JSON", help="the arguments, e.g. '{\"recordings\": [...]}'")
    sp.add_argument("--key", required=True, help="the console's private key (console.key)")
    sp.add_argument("--id", help="request id (default: a new one; the same id is not re-run)")
    sp.add_argument("--station", help="station id (default: station.id of the config)")
    sp.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the reply")
    from agent.cli.dock import add_parsers as add_dock  # the dock console and its PINs

    add_dock(add)
