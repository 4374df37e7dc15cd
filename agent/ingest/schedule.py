"""Scheduling ingest: which recording is copied next, earliest deadline first.

`claim` picks the next recording by priority, then earliest deadline, then oldest start,
skipping recorders this process (`agent.ingest.bays`) or another agent process
(`agent.ledger.copylocks`) is already reading, and marks it `copying` (`ingest.started`) only
if the spool has room for it (`agent.ingest.space`). `waiting` lists files still settling.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

from agent.core import clock
from agent.ingest.bays import Bays
from agent.ingest.space import SpoolSpace
from agent.ledger import recordings as rec
from agent.station.context import Context


class Scheduler:
    def __init__(self, ctx: Context, bays: Bays, space: SpoolSpace) -> None:
        self.ctx = ctx
        self.bays = bays
        self.space = space

    def claim(
        self,
        device_ids: list[int] | None = None,
        exclude: set[str] | None = None,
        retry_seconds: float | None = None,
    ) -> sqlite3.Row | None:
        """Next recording to copy (EDF), marked `copying`; None if nothing is ready."""
        settle = timedelta(seconds=self.ctx.cfg.detect.settle_seconds)
        now = clock.now()
        stable_before = clock.iso(now - settle)
        if retry_seconds is None:
            retry_seconds = self.ctx.cfg.ingest.retry_seconds
        retry_before = clock.iso(now - timedelta(seconds=retry_seconds))
        with self.bays.lock:
            self.ctx.spool_lock.shared()  # a live copier: recovery elsewhere leaves us alone
            # Every value is bound: the device ids and recording ids travel as one JSON array
            # each, so no identifier ever becomes SQL text.
            only_devices = None if device_ids is None else json.dumps([int(i) for i in device_ids])
            rows = self.ctx.ledger.query(
                "SELECT r.*, d.serial, d.volume, d.vendor, d.registered, d.inventory_status"
                " FROM recordings r JOIN devices d ON d.id = r.device_id"
                " WHERE d.docked = 1"
                " AND r.device_id NOT IN (SELECT value FROM json_each(?))"
                " AND (? IS NULL OR r.device_id IN (SELECT value FROM json_each(?)))"
                " AND r.id NOT IN (SELECT value FROM json_each(?))"
                " AND ((r.state = 'discovered' AND r.stable_since <= ?)"
                "      OR (r.state = 'failed' AND r.updated_at <= ?))"
                " ORDER BY r.priority DESC, r.deadline ASC, r.start ASC LIMIT 16",
                (
                    json.dumps(self.bays.skipped()),
                    only_devices,
                    only_devices,
                    json.dumps(sorted(str(x) for x in exclude or ())),
                    stable_before,
                    retry_before,
                ),
            )
            for row in rows:
                device = int(row["device_id"])
                # Another agent process reading this recorder keeps it (one reader each).
                if not self.ctx.device_locks.try_acquire(device):
                    continue
                try:
                    taken = self.take(row)
                except BaseException:
                    self.ctx.device_locks.release(device)
                    raise
                if taken:
                    self.bays.taken(device)
                    return row
                self.ctx.device_locks.release(device)
            return None

    def take(self, row: sqlite3.Row) -> bool:
        """Mark `row` copying, unless another process claimed or changed it since we looked:
        the check and the update share one write transaction, so two never both win."""
        self.space.check(int(row["size"]))
        with self.ctx.ledger.tx() as conn:
            now = conn.execute(
                "SELECT state, updated_at FROM recordings WHERE id = ?", (row["id"],)
            ).fetchone()
            if now is None or tuple(now) != (row["state"], row["updated_at"]):
                return False
            rec.transition(
                conn,
                row["id"],
                "copying",
                fields={"attempts": row["attempts"] + 1},
                event="ingest.started",
                event_fields={"recording": row["id"], "serial": row["serial"], "size": row["size"]},
            )
        return True

    def waiting(self, device_ids: list[int] | None = None) -> list[sqlite3.Row]:
        """Discovered recordings whose files are still changing (not yet settled)."""
        settle = timedelta(seconds=self.ctx.cfg.detect.settle_seconds)
        stable_before = clock.iso(clock.now() - settle)
        sql = "SELECT id, source_path FROM recordings WHERE state='discovered' AND stable_since > ?"
        rows = self.ctx.ledger.query(sql, (stable_before,))
        if device_ids is None:
            return rows
        ids = {
            r["id"]
            for r in self.ctx.ledger.query(
                f"SELECT id FROM recordings WHERE device_id IN ({','.join('?' * len(device_ids))})",
                tuple(device_ids),
            )
        }
        return [r for r in rows if r["id"] in ids]
