"""Crash recovery for ingest: interrupted copies are redone, temp leftovers go.

After a crash (or at start) `copying` rows go back to `discovered` and the spool is swept
(agent.ingest.spool: only provable temp leftovers are removed, strays moved aside, missing
copies reported). Never while this process copies (agent.ingest.bays) or another agent process
copies into the same spool (the spool lock, agent.ledger.copylocks).
"""

from __future__ import annotations

import logging

from agent.core import crashpoint
from agent.ingest import spool as spoolsweep
from agent.ingest.bays import Bays
from agent.ledger import recordings as rec
from agent.station.context import Context

logger = logging.getLogger(__name__)


class Recovery:
    def __init__(self, ctx: Context, bays: Bays) -> None:
        self.ctx = ctx
        self.bays = bays

    def recover(self) -> int:
        """After a crash: `copying` rows go back to `discovered`, stale temp files go.

        Only when no other agent process is copying into this spool: another process's
        `copying` rows and files are work in progress, not leftovers (see agent.ledger.copylocks).
        Safe to call periodically: it does nothing while a copy of this process is running.
        """
        with self.bays.lock:
            if self.bays.busy:
                return 0
            lock = self.ctx.spool_lock
            if not lock.try_exclusive():
                lock.shared()
                logger.debug("another agent process is copying into %s; recovery deferred",
                             self.ctx.spool)  # fmt: skip
                return 0
            try:
                return self._recover()
            finally:
                lock.shared()

    def _recover(self) -> int:
        with self.ctx.ledger.tx() as conn:
            n = rec.requeue_copying(conn)
        crashpoint.hit("ingest.recover")
        # Only provable temp leftovers are removed; strays are moved aside (agent.ingest.spool).
        spoolsweep.sweep(self.ctx)
        spoolsweep.check_missing(self.ctx)
        if n:
            logger.info("recovered %d interrupted copies; they will be redone", n)
        return n
