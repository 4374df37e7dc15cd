"""The daemon: named worker threads around one stop event, supervised, systemd-aware.

Threads: detect (volume watcher), ingest-N (copy workers, EDF), archive (archive + release),
checkpoint (signed custody checkpoints), watchdog (systemd pings). Each loop catches and logs
its own failures and backs off, so one bad volume or a failing store never stops the rest.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from agent import custody
from agent.archiver import Archiver
from agent.context import Context
from agent.detect import VolumeWatcher
from agent.errors import SpoolFullError
from agent.ingest import Ingestor, ProgressFn
from agent.sdnotify import SystemdNotifier

logger = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 60.0


class Daemon:
    def __init__(self, ctx: Context, progress: ProgressFn | None = None) -> None:
        self.ctx = ctx
        self.stop = ctx.stop
        self.ingestor = Ingestor(ctx, progress)
        self.archiver = Archiver(ctx)
        self.watcher = VolumeWatcher(ctx.cfg, self.stop, self._on_ready, self._on_gone)
        self.notifier = SystemdNotifier()
        self.threads: list[threading.Thread] = []
        self.work = threading.Event()  # wakes the workers when a volume was registered
        self.volumes_registered = 0
        self.interview = None
        if ctx.cfg.station.role == "interview":
            from agent.interview.service import InterviewService

            self.interview = InterviewService(ctx, self.ingestor, self.work)

    # --- volume callbacks ------------------------------------------------------------------

    def _on_ready(self, path: Path) -> None:
        try:
            self.ingestor.register_volume(path)
            self.volumes_registered += 1
        except Exception:  # noqa: BLE001 - one broken volume must not stop detection
            logger.exception("volume %s could not be registered; will retry at next rescan", path)
        self.work.set()

    def _on_gone(self, path: Path) -> None:
        self.ingestor.undock(path)

    # --- loops -----------------------------------------------------------------------------

    def _supervised(self, name: str, body: Callable[[], float]) -> threading.Thread:
        """Run body() repeatedly; it returns seconds to wait. Exceptions back off."""

        def loop() -> None:
            backoff = 1.0
            while not self.stop.is_set():
                try:
                    wait = body()
                    backoff = 1.0
                except SpoolFullError as exc:
                    logger.warning("%s", exc)
                    wait = 10.0
                except Exception:  # noqa: BLE001
                    logger.exception("%s failed; retrying in %.0f s", name, backoff)
                    wait, backoff = backoff, min(backoff * 2, 60.0)
                if wait > 0:
                    self.work.wait(wait) if name.startswith("ingest") else self.stop.wait(wait)
                    if name.startswith("ingest"):
                        self.work.clear()

        t = threading.Thread(target=loop, name=name, daemon=True)
        return t

    def _ingest_step(self) -> float:
        row = self.ingestor.claim()
        if row is None:
            return 0.5
        self.ingestor.ingest(row)
        return 0.0

    def _archive_step(self) -> float:
        row = self.archiver.next_pending()
        if row is not None:
            self.archiver.archive_one(row)
            self.archiver.release_ready()
            return 0.0
        self.archiver.release_ready()
        return 1.0

    def _checkpoint_step(self) -> float:
        with self.ctx.ledger.tx() as conn:
            custody.checkpoint(conn, self.ctx.key, self.ctx.station_id)
        return CHECKPOINT_SECONDS

    def _watchdog_step(self) -> float:
        self.notifier.watchdog()
        return self.notifier.watchdog_interval() or 3600.0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.ingestor.recover()
        _ = self.ctx.key  # create the station key at first start, before any checkpoint
        self.threads = [
            self._supervised(f"ingest-{i}", self._ingest_step)
            for i in range(self.ctx.cfg.ingest.max_parallel)
        ]
        self.threads.append(self._supervised("archive", self._archive_step))
        self.threads.append(self._supervised("checkpoint", self._checkpoint_step))
        if self.notifier.watchdog_interval():
            self.threads.append(self._supervised("watchdog", self._watchdog_step))
        for t in self.threads:
            t.start()
        if self.interview is not None:
            self.threads += self.interview.start(self._supervised)
        self.threads += self.watcher.start()
        self.notifier.ready()
        logger.info(
            "evidence-agent running: station %s, watching %s",
            self.ctx.station_id,
            ", ".join(map(str, self.ctx.cfg.detect.mount_roots)),
        )

    def shutdown(self) -> None:
        self.notifier.stopping()
        self.stop.set()
        self.work.set()
        self.watcher.stop_watchdog()
        if self.interview is not None:
            self.interview.shutdown()
        for t in self.threads:
            t.join(timeout=30)
        try:
            with self.ctx.ledger.tx() as conn:
                custody.checkpoint(conn, self.ctx.key, self.ctx.station_id)
        except Exception:  # noqa: BLE001
            logger.exception("final checkpoint failed")
        logger.info("evidence-agent stopped")

    def run_forever(self) -> int:
        def on_signal(signum: int, _frame: object) -> None:
            logger.info("signal %d: stopping", signum)
            self.stop.set()
            self.work.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not self.stop.wait(1.0):
            pass
        self.shutdown()
        return 0
