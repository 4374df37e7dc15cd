"""The spool's free-space check before a copy is claimed, and its `spool.low` event.

A copy that would take the spool below `ingest.spool_reserve_bytes` is not started; the first
refusal of a shortage is announced once (`spool.low`), again only after space came back.
"""

from __future__ import annotations

from agent.core.errors import SpoolFullError
from agent.ledger import events
from agent.station.context import Context


class SpoolSpace:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._low_reported = False

    def check(self, size: int) -> None:
        """Raise SpoolFullError when copying `size` more bytes would eat into the reserve."""
        free = self.ctx.spool_free_bytes()
        reserve = self.ctx.cfg.ingest.spool_reserve_bytes
        if free - size < reserve:
            if not self._low_reported:
                with self.ctx.ledger.tx() as conn:
                    events.emit(conn, "spool.low", free_bytes=free, reserve_bytes=reserve)
                self._low_reported = True
            raise SpoolFullError(
                f"spool {self.ctx.spool} has {free} bytes free; copying {size} more would go "
                f"below ingest.spool_reserve_bytes ({reserve}). Ingest paused: free space or "
                "archive and release older recordings"
            )
        self._low_reported = False
