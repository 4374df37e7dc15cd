"""Drain the ledger outbox to `<prefix>/<station>/events`: QoS 1, deleted only after PUBACK.

Rows are published oldest first with at most `mqtt.max_inflight` unacknowledged, each PUBACK
is mapped back (mid → outbox seq) and the row deleted only then, so a broker outage, a
network loss or a kill -9 at any point leaves the event in the ledger to be sent again. The
price is at-least-once delivery: a consumer drops duplicates by the event's `id`.

Order per station: a single publisher in seq order, over one connection, keeps the broker's
order. After a reconnect paho re-sends the unacknowledged messages first; new rows wait until
those are acknowledged (or `RESEND_GRACE` passes), so a retry never overtakes newer events.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from agent.core import crashpoint
from agent.ledger import events
from agent.mqtt.connection import Connection
from agent.station.context import Context

logger = logging.getLogger(__name__)

RESEND_GRACE = 10.0  # seconds a reconnect may take to re-send what was in flight
REFUSED_BACKOFF = 30.0  # after the broker refuses an event (ACL), before trying again


@dataclass
class _InFlight:
    seq: int
    event_id: str
    generation: int


class OutboxDrainer:
    def __init__(self, ctx: Context, conn: Connection, topic: str) -> None:
        self.ctx = ctx
        self.conn = conn
        self.topic = topic
        self.window = ctx.cfg.mqtt.max_inflight
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, _InFlight] = {}  # mid -> row
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._generation = 0
        self._reconnected_at = 0.0
        self._hold_until = 0.0
        self.delivered = 0
        conn.on_publish(self._on_publish)
        conn.on_connect(self.wake.set)

    def _on_publish(self, mid: int, accepted: bool, reason: str) -> None:
        # paho's thread, which holds paho's message lock here: take no lock of ours (publish()
        # on the drainer's thread needs paho's lock), just hand over to the drainer's thread.
        self._acks.put((mid, accepted, reason))
        self.wake.set()

    @property
    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def pending(self) -> int:
        # A trigger-kept counter (migration 0009): during a long broker outage the outbox
        # grows, and counting it on every state publish would grow with it.
        row = self.ctx.ledger.one("SELECT n FROM ledger_counters WHERE name = 'outbox'")
        return int(row[0]) if row else 0

    def step(self) -> int:
        """One pass: delete acknowledged rows, publish the next ones. Returns rows published."""
        self._collect_acks()
        if not self.conn.connected.is_set():
            return 0
        now = time.monotonic()
        if self.conn.generation != self._generation:
            self._generation = self.conn.generation
            self._reconnected_at = now
        if now < self._hold_until or self._waiting_for_resend(now):
            return 0
        return self._publish_more()

    def _collect_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                mid, accepted, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            with self._lock:
                entry = self._inflight.pop(mid, None)
            if entry is None:
                continue
            if accepted:
                done.append(entry.seq)
            else:
                # Kept in the outbox: a refusal is a broker policy problem an operator fixes.
                logger.error(
                    "MQTT: broker refused event %s on %s: %s (check the broker ACL allows "
                    "this client to publish there); kept in the outbox, retrying in %.0f s",
                    entry.event_id,
                    self.topic,
                    reason,
                    REFUSED_BACKOFF,
                )
                self._hold_until = time.monotonic() + REFUSED_BACKOFF
        if done:
            # A kill here has the broker holding events the ledger still lists: they are
            # sent again after the restart and the consumer drops them by id.
            crashpoint.hit("outbox.before_delete")
            with self.ctx.ledger.tx() as conn:
                events.mark_delivered(conn, done)
            self.delivered += len(done)

    def _waiting_for_resend(self, now: float) -> bool:
        """Hold new rows while paho re-sends the previous connection's in-flight events."""
        with self._lock:
            old = [m for m, e in self._inflight.items() if e.generation != self._generation]
            if not old:
                return False
            if now - self._reconnected_at < RESEND_GRACE:
                return True
            # Not re-sent in time: forget them, they are published again from the ledger (a
            # late PUBACK for the old mid is ignored; a duplicate is dropped by its id).
            for m in old:
                del self._inflight[m]
        return False

    def _publish_more(self) -> int:
        with self._lock:
            busy = {e.seq for e in self._inflight.values()}
        room = self.window - len(busy)
        if room <= 0:
            return 0
        rows = self.ctx.ledger.query(
            "SELECT seq, id, payload FROM outbox WHERE seq > 0 ORDER BY seq LIMIT ?",
            (len(busy) + room,),
        )
        sent = 0
        for row in rows:
            if row["seq"] in busy:
                continue
            mid = self.conn.publish(self.topic, row["payload"], qos=1)
            if mid is None:
                break
            # A PUBACK arriving before this line waits in _acks: acks are matched on this
            # same thread, so the mapping is always there first.
            with self._lock:
                self._inflight[mid] = _InFlight(row["seq"], row["id"], self._generation)
            crashpoint.hit("outbox.after_publish")
            sent += 1
        return sent

    def flush(self, timeout: float) -> None:
        """On clean shutdown: send what is pending and wait (bounded) for the PUBACKs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if not self.inflight and not self.pending():
                break
            if not self.conn.connected.is_set():
                break
            self.wake.wait(0.1)
            self.wake.clear()
        self._collect_acks()
