"""Retained state on change (debounced) and at a heartbeat; ingest progress at most 1/s.

The publisher rebuilds every retained payload (station, recorders, compliance, custody,
Home Assistant discovery, fleet ratios) from the ledger when something changed: a commit by
any process (SQLite's `data_version`), ingest progress, a fleet message. A burst of changes
is collected for `mqtt.debounce_seconds`; a topic is re-sent only when its content changed
(the `at`/uptime/free-space fields alone do not count), each recorder at most once per
`mqtt.progress_seconds`, and everything every `mqtt.heartbeat_seconds` and after a reconnect
(the broker may have lost its retained messages).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.mqtt import discovery
from agent.mqtt.connection import Connection
from agent.mqtt.fleet import FleetView
from agent.mqtt.state import (
    Progress,
    compliance_state,
    custody_state,
    now_local,
    recorder_states,
    station_state,
)
from agent.mqtt.topics import Topics
from agent.station.context import Context

logger = logging.getLogger(__name__)

COMPLIANCE_EVERY = 5.0  # seconds; at most this often the compliance summary is rebuilt
STALE_PROGRESS = 30.0  # seconds without an update after which a copy's progress is dropped
VOLATILE = ("at", "uptime_s", "spool_free_bytes")  # refreshed, but not a change on their own


def _key(payload: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in payload.items() if k not in VOLATILE}, sort_keys=True)


class StatePublisher:
    def __init__(
        self,
        ctx: Context,
        conn: Connection,
        topics: Topics,
        fleet: FleetView | None,
        outbox_pending: Callable[[], int],
    ) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg.mqtt
        self.conn = conn
        self.topics = topics
        self.fleet = fleet
        self.outbox_pending = outbox_pending
        self.started = time.monotonic()
        self.wake = threading.Event()
        self.force = threading.Event()
        self._lock = threading.Lock()
        self._progress: dict[str, Progress] = {}
        self._progress_dirty = False
        self._last: dict[str, tuple[str, float]] = {}  # topic -> (content key, sent at)
        self._deferred = False
        self._generation = 0
        self._data_version: int | None = None
        self._heartbeat_at = 0.0
        self._compliance_cache: tuple[float, dict[str, Any]] | None = None
        conn.on_connect(self.wake.set)

    # --- inputs (other threads; must never block) -------------------------------------------

    def on_progress(self, serial: str, recording: str, done: int, total: int) -> None:
        with self._lock:
            self._progress[serial] = Progress(recording, done, total, time.monotonic())
            self._progress_dirty = True
        self.wake.set()

    def changed(self) -> None:
        self.wake.set()

    def republish_all(self) -> None:
        self.force.set()
        self.wake.set()

    # --- the loop ---------------------------------------------------------------------------

    def step(self, stop: threading.Event) -> int:
        """Wait for a change or the poll interval, then publish what changed."""
        woke = self.wake.wait(0.2 if self._deferred else self.cfg.poll_seconds)
        self.wake.clear()
        if stop.is_set() or not self.conn.connected.is_set():
            return 0
        now = time.monotonic()
        force = self.force.is_set() or now >= self._heartbeat_at
        if self.conn.generation != self._generation:
            self._generation, force = self.conn.generation, True
        if woke and not force and self.cfg.debounce_seconds:
            stop.wait(self.cfg.debounce_seconds)  # let a burst of changes settle
        if not (force or self._deferred or self._dirty()):
            return 0
        if force:
            self.force.clear()
            self._heartbeat_at = now + self.cfg.heartbeat_seconds
        return self.publish(force)

    def _dirty(self) -> bool:
        row = self.ctx.ledger.one("PRAGMA data_version")
        version = int(row[0]) if row else 0
        fleet = self.fleet is not None and self.fleet.changed.is_set()
        with self._lock:
            progress = self._progress_dirty or any(p.finished for p in self._progress.values())
        if version != self._data_version or fleet or progress:
            self._data_version = version
            return True
        return False

    def publish(self, force: bool) -> int:
        self._deferred = False
        if self.fleet is not None:
            self.fleet.changed.clear()
        sent = 0
        for topic, payload, gap in self._payloads(force):
            sent += self._maybe_send(topic, payload, force, gap)
        return sent

    def _maybe_send(self, topic: str, payload: dict[str, Any], force: bool, gap: float) -> int:
        key = _key(payload)
        now = time.monotonic()
        last = self._last.get(topic)
        if last is not None and not force:
            if last[0] == key:
                return 0
            if now - last[1] < gap:
                self._deferred = True  # changed too soon after the last send: next pass
                return 0
        mid = self.conn.publish(topic, json.dumps(payload, ensure_ascii=False), qos=1, retain=True)
        if mid is None:
            return 0
        self._last[topic] = (key, now)
        return 1

    # --- payloads ---------------------------------------------------------------------------

    def _compliance(self, force: bool) -> dict[str, Any]:
        # The compliance engine may walk every recording; its numbers move slowly, so during
        # a busy ingest it is re-run at most every COMPLIANCE_EVERY seconds.
        now = time.monotonic()
        cached = self._compliance_cache
        if force or cached is None or now - cached[0] >= COMPLIANCE_EVERY:
            cached = self._compliance_cache = (now, compliance_state(self.ctx))
        return cached[1]

    def _payloads(self, force: bool) -> list[tuple[str, dict[str, Any], float]]:
        t = self.topics
        # A finished copy keeps showing 100 % for two progress intervals (so it is seen even
        # when its last update had to wait for the per-recorder rate limit), then goes.
        keep = 2 * self.cfg.progress_seconds + self.cfg.debounce_seconds
        now = time.monotonic()
        with self._lock:
            self._progress_dirty = False
            for serial, p in list(self._progress.items()):
                # An unfinished copy that stopped reporting failed: drop it too.
                if now - p.at > (keep if p.finished else STALE_PROGRESS):
                    del self._progress[serial]
            progress = dict(self._progress)
        compliance = self._compliance(force)
        out: list[tuple[str, dict[str, Any], float]] = [
            (t.state, station_state(self.ctx, self.started, self.outbox_pending()), 0.0),
            (t.compliance, compliance, 0.0),
            (t.custody, custody_state(self.ctx), 0.0),
        ]
        gap = self.cfg.progress_seconds
        for serial, state in recorder_states(self.ctx, progress).items():
            out.append((t.recorder(serial), state, gap))
        fleet: dict[str, dict[str, Any]] = {}
        if self.fleet is not None:
            fleet = self.fleet.ratios(
                self.ctx.rosters.officers(),
                self.ctx.cfg.compliance,
                self.ctx.station_id,
                now_local(self.ctx),
            )
            out += [(t.unit_ratio(u), p, 0.0) for u, p in fleet.items()]
        if self.cfg.discovery:
            local = [u["unit"] for u in compliance.get("units", [])]
            names = sorted(fleet) if self.fleet is not None else local
            for topic, config in discovery.configs(t, names, self.fleet is not None).items():
                out.append((topic, config, 0.0))
        return out
