"""Which recorders this process is reading, and which hung: shared by the ingest services.

One `Bays` per process, built before the services and handed to each: registration forgives a
hung recorder when it docks again, scheduling skips busy and hung recorders, the copy marks a
recorder hung and frees its bay when done, and crash recovery waits while any bay is busy.
`lock` serialises claiming against recovery within the process (other processes: the ledger's
copy locks, agent.ledger.copylocks).
"""

from __future__ import annotations

import threading

from agent.station.context import Context


class Bays:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        self.busy: set[int] = set()  # device ids with a copy in progress (one reader each)
        # Recorders whose read hung in the kernel: left alone until they dock again (another
        # read would only add another stuck thread).
        self.stalled: set[int] = set()

    def skipped(self) -> list[int]:
        """Device ids a claim must pass over (call with `lock` held)."""
        return sorted(self.busy | self.stalled)

    def taken(self, device_id: int) -> None:
        """A copy from `device_id` begins (call with `lock` held)."""
        self.busy.add(device_id)

    def done(self, device_id: int) -> None:
        """The copy from `device_id` ended, however it ended: the bay and its lock are free."""
        with self.lock:
            self.busy.discard(device_id)
            self.ctx.device_locks.release(device_id)

    def stall(self, device_id: int) -> None:
        """A read from `device_id` hung in the kernel: skip the recorder until it re-docks."""
        self.stalled.add(device_id)

    def redocked(self, device_id: int) -> None:
        """`device_id` docked again: a hung read is forgiven."""
        self.stalled.discard(device_id)
