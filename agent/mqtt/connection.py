"""One broker connection: paho-mqtt 2.x (callback API v2) with TLS, credentials and the LWT.

paho's own network thread (`loop_start`) connects, retries with doubling back-off and resends
unacknowledged QoS 1 messages after a reconnect; this wrapper adds what the agent needs on
top: `online`/`offline` availability with a retained LWT, MQTT 5 with a fall-back to 3.1.1
when a broker refuses version 5, one log line per connection state change (not one per
retry), and subscriptions that are re-made on every connect. Nothing here blocks: callbacks
run on paho's thread and only hand work over to the service's own threads.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config.loader import AgentConfig
from agent.core.errors import MqttConfigError
from agent.mqtt.secrets import MqttCredentials
from agent.mqtt.topics import Topics

logger = logging.getLogger(__name__)

UNSUPPORTED_PROTOCOL = 132  # CONNACK reason "Unsupported protocol version" (3.1.1 rc 1)

PublishListener = Callable[[int, bool, str], None]  # mid, accepted, reason
MessageHandler = Callable[[mqtt.MQTTMessage], None]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise MqttConfigError(f"mqtt.url {url!r}: use mqtt://host:1883 or mqtts://host:8883")
    if parts.username or parts.password:
        raise MqttConfigError(
            "mqtt.url must not carry a user name or password; put MQTT_USERNAME and "
            "MQTT_PASSWORD in the credentials file"
        )
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise MqttConfigError(f"mqtt.url {url!r}: {exc}") from None
    return BrokerAddress(parts.hostname, port, tls)


def tls_context(cfg: AgentConfig) -> ssl.SSLContext:
    m = cfg.mqtt
    try:
        ctx = ssl.create_default_context(cafile=str(m.tls_ca_file) if m.tls_ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise MqttConfigError(f"mqtt.tls_ca_file {m.tls_ca_file}: cannot load: {exc}") from None
    if m.tls_cert_file is not None:
        try:
            ctx.load_cert_chain(str(m.tls_cert_file), str(m.tls_key_file or m.tls_cert_file))
        except (OSError, ssl.SSLError) as exc:
            raise MqttConfigError(
                f"mqtt.tls_cert_file {m.tls_cert_file} / mqtt.tls_key_file "
                f"{m.tls_key_file}: cannot load the client certificate: {exc}"
            ) from None
    elif m.tls_key_file is not None:
        raise MqttConfigError("mqtt.tls_key_file is set without mqtt.tls_cert_file")
    return ctx


class Connection:
    """The agent's single MQTT session; thread-safe `publish`, reconnects by itself."""

    def __init__(self, cfg: AgentConfig, topics: Topics, creds: MqttCredentials) -> None:
        self.cfg = cfg
        self.topics = topics
        self.creds = creds
        self.address = parse_url(cfg.mqtt.url or "")
        self._tls = tls_context(cfg) if self.address.tls else None
        self.client_id = cfg.mqtt.client_id or f"evidence-agent-{cfg.station.id}"[:64]
        self.v5 = cfg.mqtt.protocol != "3.1.1"
        self.connected = threading.Event()
        self.generation = 0  # +1 per successful connect; lets users notice a reconnect
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._subs: list[tuple[str, int, MessageHandler]] = []
        self._publish_listeners: list[PublishListener] = []
        self._connect_listeners: list[Callable[[], None]] = []
        self._last_logged: tuple[str, str] | None = None
        self._fallback = threading.Event()
        self._stopping = False

    # --- wiring (before start) --------------------------------------------------------------

    def subscribe(self, topic_filter: str, qos: int, handler: MessageHandler) -> None:
        self._subs.append((topic_filter, qos, handler))

    def on_publish(self, listener: PublishListener) -> None:
        self._publish_listeners.append(listener)

    def on_connect(self, listener: Callable[[], None]) -> None:
        self._connect_listeners.append(listener)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._client = self._build()
            self._client.connect_async(
                self.address.host,
                self.address.port,
                keepalive=self.cfg.mqtt.keepalive_seconds,
                clean_start=True,
            )
            self._client.loop_start()
        logger.info(
            "MQTT: connecting to %s as %s (MQTT %s)",
            self.address,
            self.client_id,
            "5" if self.v5 else "3.1.1",
        )

    def maintain(self) -> None:
        """Called from a service thread: rebuild the client after a protocol fall-back."""
        if not self._fallback.is_set():
            return
        self._fallback.clear()
        with self._lock:
            old, self._client = self._client, None
        if old is not None:
            old.loop_stop()
        self.v5 = False
        self.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Clean shutdown: `offline` (retained), then disconnect, so no LWT is needed."""
        self._stopping = True
        with self._lock:
            client = self._client
        if client is None:
            return
        if self.connected.is_set():
            info = client.publish(self.topics.availability, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        client.disconnect()
        client.loop_stop()
        self.connected.clear()
        logger.info("MQTT: disconnected from %s (availability offline)", self.address)

    # --- publishing -------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> int | None:
        """Queue a message; returns its mid (PUBACK comes to on_publish listeners) or None."""
        with self._lock:
            client = self._client
        if client is None:
            return None
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        # NO_CONN still queues QoS>0 messages inside paho; they go out after the reconnect.
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return int(info.mid)
        logger.debug("MQTT: publish to %s not queued: %s", topic, mqtt.error_string(info.rc))
        return None

    # --- paho callbacks (network thread) ----------------------------------------------------

    def _build(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
            clean_session=None if self.v5 else True,
        )
        client.reconnect_delay_set(
            self.cfg.mqtt.reconnect_min_seconds, self.cfg.mqtt.reconnect_max_seconds
        )
        # Room for the event window plus state and replies; the outbox bounds the events.
        client.max_inflight_messages_set(self.cfg.mqtt.max_inflight + 100)
        if self.creds.username:
            client.username_pw_set(self.creds.username, self.creds.password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        for topic_filter, _qos, handler in self._subs:
            client.message_callback_add(topic_filter, _guard(handler))
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            if (
                reason.value == UNSUPPORTED_PROTOCOL
                and self.v5
                and self.cfg.mqtt.protocol == "auto"
            ):
                self._log_state("fallback", "broker refused MQTT 5; falling back to MQTT 3.1.1")
                self._fallback.set()
                return
            self._log_state(
                "refused",
                f"broker {self.address} refused the connection: {reason}" + _refusal_hint(reason),
                logging.ERROR,
            )
            return
        self.generation += 1
        self.connected.set()
        self._log_state(
            "connected",
            f"connected to {self.address} (MQTT {'5' if self.v5 else '3.1.1'})",
            logging.INFO,
        )
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        if self._subs:
            client.subscribe([(f, q) for f, q, _h in self._subs])
        for listener in self._connect_listeners:
            listener()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        # paho calls this from inside its `except OSError`, so the cause is still at hand.
        exc = sys.exc_info()[1]
        # A plain-MQTT listener answers a TLS ClientHello by dropping the connection.
        handshake = (ssl.SSLError, ConnectionResetError, ConnectionAbortedError)
        if self.address.tls and isinstance(exc, handshake):
            why = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else exc
            detail = (
                f"TLS handshake with {self.address} failed: {why} (is the port a TLS "
                "listener, and does mqtt.tls_ca_file hold the CA that signed it?)"
            )
        else:
            detail = f"broker {self.address} unreachable: {exc or 'connection failed'}"
        self._log_state("unreachable", detail + "; retrying with back-off, events are kept")

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stopping:
            self._log_state(
                "lost",
                f"connection to {self.address} lost ({reason}); retrying with back-off, "
                "events are kept in the ledger outbox",
            )

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        for listener in self._publish_listeners:
            listener(mid, not reason.is_failure, str(reason))

    def _log_state(self, state: str, detail: str, level: int = logging.WARNING) -> None:
        key = (state, detail)
        if key != self._last_logged:
            self._last_logged = key
            logger.log(level, "MQTT: %s", detail)


def _refusal_hint(reason: ReasonCode) -> str:
    name = str(reason).lower()
    if "user name or password" in name or "not authorized" in name:
        return " (check MQTT_USERNAME / MQTT_PASSWORD in the credentials and the broker's users)"
    if "identifier" in name:
        return " (another client may use the same mqtt.client_id)"
    return ""


def _guard(handler: MessageHandler) -> Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None]:
    """A failing handler must not take paho's network thread (and every publish) with it."""

    def run(_client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            handler(msg)
        except Exception:  # noqa: BLE001
            logger.exception("MQTT: handling a message on %s failed", msg.topic)

    return run
