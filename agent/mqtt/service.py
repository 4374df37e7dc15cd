"""The MQTT status plane as the daemon runs it: one connection, three worker steps.

Threads (run by the daemon's supervisor): `mqtt-outbox` drains events, `mqtt-state`
publishes retained state, `mqtt-commands` executes commands; paho runs its own network
thread. Nothing here is on the ingest path: ingest only writes the ledger (outbox rows) and
calls `on_progress`, which just records a number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt

from agent.mqtt import secrets
from agent.mqtt.commands import CommandProcessor
from agent.mqtt.connection import Connection
from agent.mqtt.fleet import FleetView
from agent.mqtt.outbox import OutboxDrainer
from agent.mqtt.publisher import StatePublisher
from agent.mqtt.topics import Topics
from agent.station.context import Context

logger = logging.getLogger(__name__)

OUTBOX_POLL = 0.5  # seconds between looks at the outbox when nothing woke the drainer

Step = Callable[[], float]


class MqttService:
    def __init__(self, ctx: Context, rescan: Callable[[], None] | None = None) -> None:
        m = ctx.cfg.mqtt
        self.ctx = ctx
        self.stop_event = ctx.stop
        self.topics = Topics(m.topic_prefix, ctx.station_id, m.discovery_prefix)
        self.conn = Connection(ctx.cfg, self.topics, secrets.load(ctx.cfg.credentials.file))
        self.fleet = (
            FleetView(self.topics.split_recorder_topic) if ctx.cfg.fleet.aggregate else None
        )
        self.outbox = OutboxDrainer(ctx, self.conn, self.topics.events)
        self.publisher = StatePublisher(
            ctx, self.conn, self.topics, self.fleet, self.outbox.pending
        )
        self.commands = CommandProcessor(ctx, self.conn, self.topics, rescan)
        # Commands are subscribed to even when disabled, so a sender gets a refusal, not silence.
        self.conn.subscribe(self.topics.cmd_filter, 1, self.commands.on_message)
        if m.discovery:
            self.conn.subscribe(self.topics.ha_status, 1, self._on_ha_status)
        if self.fleet is not None:
            self.conn.subscribe(self.topics.fleet_recorders_filter, 1, self._on_fleet)

    # --- callbacks --------------------------------------------------------------------------

    def on_progress(self, serial: str, recording: str, done: int, total: int) -> None:
        self.publisher.on_progress(serial, recording, done, total)

    def _on_ha_status(self, msg: mqtt.MQTTMessage) -> None:
        if bytes(msg.payload).strip().lower() == b"online":
            logger.info("MQTT: Home Assistant is online; re-sending discovery")
            self.publisher.republish_all()

    def _on_fleet(self, msg: mqtt.MQTTMessage) -> None:
        assert self.fleet is not None
        self.fleet.on_message(msg)
        self.publisher.changed()

    # --- worker steps (each returns seconds for the supervisor to wait; 0: they wait) -------

    def _outbox_step(self) -> float:
        self.conn.maintain()
        if self.outbox.step():
            self.publisher.changed()  # new events mean the state moved too
        self.outbox.wake.wait(OUTBOX_POLL)
        self.outbox.wake.clear()
        return 0.0

    def _state_step(self) -> float:
        self.publisher.step(self.stop_event)
        return 0.0

    def _commands_step(self) -> float:
        self.commands.step()
        return 0.0

    def steps(self) -> list[tuple[str, Step]]:
        return [
            ("mqtt-outbox", self._outbox_step),
            ("mqtt-state", self._state_step),
            ("mqtt-commands", self._commands_step),
        ]

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.conn.start()

    def wake_all(self) -> None:
        """Let the workers see the stop event now instead of at their next poll."""
        self.publisher.wake.set()
        self.outbox.wake.set()

    def stop(self, flush_seconds: float = 2.0) -> None:
        """After the workers stopped: last events out (bounded wait), `offline`, disconnect."""
        try:
            if self.conn.connected.is_set():
                self.outbox.flush(flush_seconds)
                self.publisher.publish(force=False)
        except Exception:  # noqa: BLE001 - shutdown goes on; rows stay in the outbox
            logger.exception("MQTT: final flush failed; pending events stay in the outbox")
        self.conn.stop()
