"""Release: erase from docked recorders whatever the wipe gate allows.

The daemon's own `release` loop calls `Releaser.release_ready`, woken whenever a copy or an
upload completes, so erasing follows spooling or archiving while the upload loop only uploads
and the archive layer knows nothing about recorders.
"""

from __future__ import annotations

import threading

from agent.archive.store import Store
from agent.retention import wipegate
from agent.station.context import Context


class Releaser:
    def __init__(self, ctx: Context, store: Store) -> None:
        self.ctx = ctx
        self.store = store  # the gate asks it again right before erasing
        self._lock = threading.Lock()  # several archive threads share one releaser

    def release_ready(self) -> int:
        """Erase from docked recorders whatever the gate allows; returns how many."""
        policy = self.ctx.cfg.ingest.release_after
        if policy == "never" or not self._lock.acquire(blocking=False):
            return 0
        try:
            return self._release(policy)
        finally:
            self._lock.release()

    def _release(self, policy: str) -> int:
        states = ("archived",) if policy == "archived" else ("spooled", "archived")
        # Docked recorders first (a few rows), then their recordings by index: joining the
        # other way round walks every archived recording of the station's history.
        docked = [r[0] for r in self.ctx.ledger.query("SELECT id FROM devices WHERE docked=1")]
        rows = [
            r
            for device_id in docked
            for r in self.ctx.ledger.query(
                "SELECT r.id FROM recordings r WHERE r.device_id = ?"
                f" AND r.state IN ({','.join('?' * len(states))})",
                (device_id, *states),
            )
        ]
        n = 0
        for r in rows:
            if wipegate.release(self.ctx.cfg, self.ctx.ledger, r["id"], self.store).allowed:
                n += 1
        return n
