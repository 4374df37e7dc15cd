"""Ingest, put together: the four ingest services of one process, each built once.

`Ingestor` builds, in order and with only what each needs, the shared bays
(agent.ingest.bays), registration (agent.ingest.register: dock a volume's recorder, register
its files), scheduling (agent.ingest.schedule: earliest deadline first, with the spool's
free-space check of agent.ingest.space), the copy and commit (agent.ingest.copyjob) and crash
recovery (agent.ingest.recovery). The daemon, `ingest DIR` and the interview station use the
services through it; nothing is replaced after construction.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.ingest.bays import Bays
from agent.ingest.copyjob import CopyJob, Outcome, ProgressFn
from agent.ingest.recovery import Recovery
from agent.ingest.register import VolumeRegistration, VolumeReport
from agent.ingest.schedule import Scheduler
from agent.ingest.space import SpoolSpace
from agent.recorders.linker import Linker
from agent.station.context import Context
from drivers.base import DeviceIdentity

__all__ = ["Ingestor", "Outcome", "ProgressFn"]


class Ingestor:
    def __init__(
        self, ctx: Context, progress: ProgressFn | None = None, linker: Linker | None = None
    ) -> None:
        self.ctx = ctx
        self.bays = Bays(ctx)
        self.registration = VolumeRegistration(ctx, self.bays, linker)
        self.scheduler = Scheduler(ctx, self.bays, SpoolSpace(ctx))
        self.copier = CopyJob(ctx, self.bays, progress)
        self.recovery = Recovery(ctx, self.bays)

    def register_volume(
        self, root: Path, ident: DeviceIdentity | None = None, pin: bool = False
    ) -> VolumeReport:
        """Dock the volume's recorder and register its files (agent.ingest.register)."""
        return self.registration.register_volume(root, ident, pin)

    def undock(self, root: Path) -> None:
        """The volume at `root` is gone: its recorder is undocked."""
        self.registration.undock(root)

    def claim(
        self,
        device_ids: list[int] | None = None,
        exclude: set[str] | None = None,
        retry_seconds: float | None = None,
    ) -> sqlite3.Row | None:
        """Next recording to copy (EDF), marked `copying`; None if nothing is ready."""
        return self.scheduler.claim(device_ids, exclude, retry_seconds)

    def waiting(self, device_ids: list[int] | None = None) -> list[sqlite3.Row]:
        """Discovered recordings whose files are still changing (not yet settled)."""
        return self.scheduler.waiting(device_ids)

    def ingest(self, row: sqlite3.Row) -> Outcome:
        """Copy a claimed recording and commit the result (agent.ingest.copyjob)."""
        return self.copier.ingest(row)

    def recover(self) -> int:
        """Requeue interrupted copies and sweep the spool (agent.ingest.recovery)."""
        return self.recovery.recover()
