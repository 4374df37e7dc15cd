"""The daemon: named worker threads around one stop event, supervised, systemd-aware.

Threads: detect (volume watcher), ingest-N (copy workers, EDF), archive (uploads, EDF),
archive-maintain (anchors, sidecars, abandoned uploads), release (the wipe gate: erases from
docked recorders what it allows, woken after each copy and upload), housekeep (removes spool
copies the archive verifiably holds), checkpoint (signed custody checkpoints), recover
(leftovers of other, killed agent processes), compliance (deadline and not-docked alerts),
driver-<name> (one per configured USB/serial driver), inventory (re-imports the inventory file
when it changes), watchdog (systemd pings), and with `mqtt.url` set mqtt-outbox / mqtt-state /
mqtt-commands (agent.mqtt). Each loop catches and logs its own failures and backs off, so one
bad volume, recorder, a failing store or a broker that is down never stops the rest.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from agent.archive.archiver import Archiver
from agent.archive.stores import open_store
from agent.compliance.engine import ComplianceMonitor
from agent.core import hangpoint, stopsignal
from agent.core.errors import AgentError, ArchiveError, SpoolFullError
from agent.core.liveness import Liveness
from agent.core.sdnotify import SystemdNotifier
from agent.daemon.api_console import CopyProgress
from agent.daemon.sdstatus import STATUS_SECONDS, status_line
from agent.ingest import sealold
from agent.ingest.ingestor import Ingestor, ProgressFn
from agent.ledger import cadence, custody
from agent.ledger import devices as device_rows
from agent.recorders import inventory as devices
from agent.recorders.detect import VolumeWatcher
from agent.recorders.driverloop import DriverRunner
from agent.recorders.linker import Linker
from agent.retention.housekeeping import housekeep
from agent.retention.outbox import enforce_cap
from agent.retention.release import Releaser
from agent.station.context import Context
from agent.station.credentials import Credentials
from drivers import registry
from drivers.base import DeviceError, DriverEnv, DriverSettings

if TYPE_CHECKING:
    from agent.mqtt.service import MqttService

logger = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 60.0
MAINTAIN_SECONDS = 10.0  # Archiver.maintain itself runs the work at most every few minutes
RELEASE_SECONDS = 1.0  # idle poll of the wipe gate; a finished copy or upload wakes it sooner
INVENTORY_SECONDS = 10.0


class Daemon:
    def __init__(self, ctx: Context, progress: ProgressFn | None = None) -> None:
        self.ctx = ctx
        self.stop = ctx.stop
        store = open_store(ctx)
        self.archiver = Archiver(ctx, store, maintain_when_idle=False)
        self.releaser = Releaser(ctx, store)
        self.release_wake = threading.Event()  # set when a copy or an upload completes
        self.compliance = ComplianceMonitor(ctx)  # last_summary: the MQTT compliance payload
        self.watcher = VolumeWatcher(ctx.cfg, self.stop, self._on_ready, self._on_gone)
        self.notifier = SystemdNotifier()
        self.threads: list[threading.Thread] = []
        self.work = threading.Event()  # wakes the workers when a volume was registered
        self.volumes_registered = 0
        self.linker = Linker()  # shared by the ingestor and the driver threads
        self.runners: list[DriverRunner] = []
        self._stale_reported: list[str] = []
        self.mqtt = self._mqtt_service()
        wd = ctx.cfg.watchdog
        self.liveness = Liveness(wd.default_deadline_seconds, wd.deadlines)
        self.copies = CopyProgress()  # what the dock console shows per bay
        # Built once with all it needs: progress goes to MQTT, the watchdog (a copy reports per
        # chunk: a 4 GB file at USB 2.0 speed is slow, not hung) and the dock console.
        if self.mqtt is not None:
            progress = _chain(progress, self.mqtt.on_progress)
        progress = _chain(_chain(progress, self._copy_progress), self.copies.update)
        self.ingestor = Ingestor(ctx, progress, linker=self.linker)
        self.interview = None
        if ctx.cfg.station.role == "interview":
            from agent.interview.service import InterviewService

            self.interview = InterviewService(ctx, self.ingestor, self.work)
        self.watcher.on_pass = lambda wait: self.liveness.progress("detect", wait)

    def _mqtt_service(self) -> MqttService | None:
        if not self.ctx.cfg.mqtt.url:
            return None
        try:
            from agent.mqtt.service import MqttService

            return MqttService(self.ctx, rescan=self.watcher.request_rescan)
        except AgentError as exc:
            # Status over MQTT is for dashboards; ingest goes on without it.
            logger.error("MQTT status plane disabled: %s", exc)
            return None

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

    def _supervised(
        self, name: str, body: Callable[[], float], wake: threading.Event | None = None
    ) -> threading.Thread:
        """Run body() repeatedly; it returns seconds to wait. Exceptions back off.

        With `wake`, the wait ends early when that event is set (new work arrived).
        """

        def loop() -> None:
            backoff = 1.0
            self.liveness.register(name)
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
                self.liveness.progress(name, wait)  # a failed attempt is progress, too
                if wait > 0 and wake is not None:
                    wake.wait(wait)
                    wake.clear()
                elif wait > 0:
                    self.stop.wait(wait)
            self.liveness.retire(name)

        t = threading.Thread(target=loop, name=name, daemon=True)
        return t

    def _ingest_step(self) -> float:
        row = self.ingestor.claim()
        if row is None:
            return 0.5
        self.ingestor.ingest(row)
        self.release_wake.set()
        return 0.0

    def _archive_step(self) -> float:
        hangpoint.hit("archive.step")
        wait = self.archiver.step()
        if wait == 0:  # something was archived: the wipe gate may now allow it
            self.release_wake.set()
        return wait

    def _maintain_step(self) -> float:
        try:
            self.archiver.maintain()
        except ArchiveError as exc:  # the upload loop reports store faults and backs off
            logger.debug("archive maintenance deferred: %s", exc)
        return MAINTAIN_SECONDS

    def _release_step(self) -> float:
        released = self.releaser.release_ready()
        return 0.0 if released else RELEASE_SECONDS

    def _copy_progress(self, _serial: str, _recording: str, _done: int, _total: int) -> None:
        hangpoint.hit("ingest.chunk")
        self.liveness.progress()  # this ingest thread's loop

    def _housekeep_step(self) -> float:
        housekeep(self.ctx, self.archiver.store)
        enforce_cap(self.ctx)  # the outbox is bounded whether or not MQTT is on
        return self.ctx.cfg.archive.housekeep_seconds

    def _recover_step(self) -> float:
        # A copy left half-done by another agent process that was killed (say `ingest DIR`)
        # is recovered once that process is gone; while it lives, its work is its own.
        self.ingestor.recover()
        return self.ctx.cfg.detect.rescan_seconds

    def _checkpoint_step(self) -> float:
        c = self.ctx.cfg.custody
        with self.ctx.ledger.tx() as conn:
            if cadence.due(conn, c.checkpoint_events, c.checkpoint_seconds):
                custody.checkpoint(conn, self.ctx.key, self.ctx.station_id, self.ctx.sm2)
        return CHECKPOINT_SECONDS

    def _inventory_step(self) -> float:
        devices.import_inventory(self.ctx)
        return INVENTORY_SECONDS

    def _watchdog_step(self) -> float:
        stale = self.liveness.stale()
        if not stale:
            self.notifier.watchdog()
        elif stale != self._stale_reported:
            logger.error(
                "watchdog: no progress from %s within its deadline (watchdog.deadlines);"
                " not pinging systemd, which restarts the agent",
                ", ".join(stale),
            )
        self._stale_reported = stale
        self.notifier.status(status_line(self.ctx, stale))
        return self.notifier.watchdog_interval() or STATUS_SECONDS

    # --- lifecycle -------------------------------------------------------------------------

    def _driver_env(self) -> DriverEnv:
        creds = Credentials(self.ctx.cfg.credentials.file)

        def secret(name: str) -> str | None:
            try:
                return creds.get(name)
            except AgentError as exc:  # a broken credentials file: that device's error
                raise DeviceError(str(exc), code="no_credential") from None

        return DriverEnv(timezone=self.ctx.cfg.station.timezone, secret=secret)

    def _start_drivers(self) -> list[threading.Thread]:
        env = self._driver_env()
        threads = []
        for i, settings in enumerate(self.ctx.cfg.drivers):
            if settings.type == "mass_storage":
                continue  # volumes are found by the detect thread
            try:
                driver = registry.create(settings, env)
            except (ValueError, OSError) as exc:
                self._driver_failed(i, settings, exc)
                continue
            runner = DriverRunner(self.ctx, driver, self.linker)
            self.runners.append(runner)
            threads.append(self._supervised(f"driver-{driver.label}", runner.step))
        return threads

    def _driver_failed(self, i: int, settings: DriverSettings, exc: Exception) -> None:
        """A driver that cannot start is reported; the others and the rest of the agent run."""
        name = settings.name or f"{settings.type} (drivers[{i}])"
        logger.error("driver %s cannot start: %s", name, exc)
        with self.ctx.ledger.tx() as conn:
            device_rows.report_error(
                conn,
                driver=name,
                handle=None,
                serial=None,
                stage="start",
                code="config",
                message=str(exc),
            )

    def start(self) -> None:
        # The station key first: made at first start, and a missing one (with checkpoints
        # signed by it) stops the daemon before it touches anything (agent.ledger.stationkey).
        _ = self.ctx.key
        # The encryption key likewise: a required but missing one stops the daemon here, and a
        # station writing plaintext says so once (agent.station.kek, docs/security.md).
        if self.ctx.seal is None:
            logger.warning(
                "spool copies are written in plaintext (crypto.encrypt, crypto.key_file)"
            )
        self.ingestor.recover()
        if self.ctx.cfg.inventory.file is not None:
            devices.import_inventory(self.ctx)
        self.threads = [
            self._supervised(f"ingest-{i}", self._ingest_step, wake=self.work)
            for i in range(self.ctx.cfg.ingest.max_parallel)
        ]
        for i in range(self.ctx.cfg.archive.parallel_uploads):
            name = "archive" if i == 0 else f"archive-{i}"
            self.threads.append(self._supervised(name, self._archive_step))
        self.threads.append(self._supervised("archive-maintain", self._maintain_step))
        self.threads.append(self._supervised("release", self._release_step, wake=self.release_wake))
        self.threads.append(self._supervised("housekeep", self._housekeep_step))
        self.threads.append(self._supervised("checkpoint", self._checkpoint_step))
        self.threads.append(self._supervised("recover", self._recover_step))
        if self.ctx.seal is not None:  # plaintext copies of before, at a bounded rate
            step = partial(sealold.step, self.ctx, lambda _n: self.liveness.progress())
            self.threads.append(self._supervised("encrypt-existing", step))
        self.threads.append(self._supervised("compliance", self.compliance.step))
        if self.ctx.cfg.inventory.file is not None:
            self.threads.append(self._supervised("inventory", self._inventory_step))
        self.threads += self._start_drivers()
        if self.notifier.enabled:  # pings (when WATCHDOG_USEC asks) and STATUS= lines
            self.threads.append(self._supervised("watchdog", self._watchdog_step))
        if self.mqtt is not None:
            self.mqtt.start()
            self.threads += [self._supervised(name, step) for name, step in self.mqtt.steps()]
        for t in self.threads:
            t.start()
        if self.interview is not None:
            self.threads += self.interview.start(self._supervised)
        self.threads += self.watcher.start()
        self.threads += self._start_api()
        self.notifier.ready()
        logger.info(
            "evidence-agent running: station %s, watching %s",
            self.ctx.station_id,
            ", ".join(map(str, self.ctx.cfg.detect.mount_roots)),
        )

    def _start_api(self) -> list[threading.Thread]:
        """The gate for tag/accept/reject/export/audit/interview (agent.daemon.api)."""
        from agent.daemon.api import ApiServer

        try:
            return [ApiServer(self.ctx, self.stop, self.copies).start()]
        except (AgentError, OSError) as exc:
            # Ingest goes on; gated actions are unavailable until the socket can be made.
            logger.error("gate not started at %s (api.socket): %s", self.ctx.cfg.api.socket, exc)
            return []

    def shutdown(self) -> None:
        self.notifier.stopping()
        self.stop.set()
        self.work.set()
        self.release_wake.set()
        self.watcher.stop_watchdog()
        if self.interview is not None:
            self.interview.shutdown()
        if self.mqtt is not None:
            self.mqtt.wake_all()
        for t in self.threads:
            t.join(timeout=30)
        for runner in self.runners:
            try:
                runner.close()
            except Exception:  # noqa: BLE001 - releasing a vanished device may fail
                logger.exception("closing driver %s failed", runner.label)
        try:
            with self.ctx.ledger.tx() as conn:
                custody.checkpoint(conn, self.ctx.key, self.ctx.station_id, self.ctx.sm2)
        except Exception:  # noqa: BLE001
            logger.exception("final checkpoint failed")
        if self.mqtt is not None:
            self.mqtt.stop()  # after the final checkpoint, so it is published too
        logger.info("evidence-agent stopped")

    def run_forever(self) -> int:
        on_signal = stopsignal.handler(self.stop, self.work)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not self.stop.wait(1.0):
            pass
        self.shutdown()
        return 0


def _chain(first: ProgressFn | None, second: ProgressFn) -> ProgressFn:
    if first is None:
        return second

    def both(serial: str, recording: str, done: int, total: int) -> None:
        first(serial, recording, done, total)
        second(serial, recording, done, total)

    return both
