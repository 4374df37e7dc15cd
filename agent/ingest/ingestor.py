"""Ingest: register a volume's files in the ledger, then copy them durably, EDF order.

`register_volume` (agent.ingest.register) is idempotent (the ledger is the truth, events are
hints); `claim` picks the next recording by priority, then earliest deadline, then oldest
start, skipping recorders another worker is already reading; `ingest` copies one recording
and commits the result with its custody and outbox events in one transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from agent.core import clock, crashpoint, identifiers
from agent.core.copier import copy_file
from agent.core.errors import (
    IntegrityError,
    SourceChangedError,
    SourceStalledError,
    SpoolFullError,
)
from agent.ingest import spool as spoolsweep
from agent.ingest.register import VolumeRegistration
from agent.ledger import devices as device_rows
from agent.ledger import events
from agent.ledger import paths as stationpaths
from agent.ledger import recordings as rec
from agent.recorders.linker import Linker
from agent.recorders.unknown_usb import is_unknown_volume
from agent.station.context import Context

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, str, int, int], None]  # serial, recording id, done, total


@dataclass
class Outcome:
    recording_id: str
    state: str
    sha256: str | None = None
    reason: str | None = None
    size: int = 0


class Ingestor(VolumeRegistration):
    def __init__(
        self, ctx: Context, progress: ProgressFn | None = None, linker: Linker | None = None
    ) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.progress = progress
        self._lock = threading.Lock()
        self._busy: set[int] = set()  # device ids with a copy in progress (one reader each)
        # Recorders whose read hung in the kernel: left alone until they dock again (another
        # read would only add another stuck thread).
        self.stalled: set[int] = set()
        self._spool_low_reported = False
        # Links volumes to recorders the USB/serial drivers identified (the daemon shares its
        # linker with the driver threads; alone, it still links through the ledger).
        self.linker = linker or Linker()

    def claim(
        self,
        device_ids: list[int] | None = None,
        exclude: set[str] | None = None,
        retry_seconds: float | None = None,
    ) -> sqlite3.Row | None:
        """Next recording to copy (EDF), marked `copying`; None if nothing is ready."""
        settle = timedelta(seconds=self.cfg.detect.settle_seconds)
        now = clock.now()
        stable_before = clock.iso(now - settle)
        if retry_seconds is None:
            retry_seconds = self.cfg.ingest.retry_seconds
        retry_before = clock.iso(now - timedelta(seconds=retry_seconds))
        with self._lock:
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
                    json.dumps(sorted(self._busy | self.stalled)),
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
                    taken = self._take(row)
                except BaseException:
                    self.ctx.device_locks.release(device)
                    raise
                if taken:
                    self._busy.add(device)
                    return row
                self.ctx.device_locks.release(device)
            return None

    def _take(self, row: sqlite3.Row) -> bool:
        """Mark `row` copying, unless another process claimed or changed it since we looked:
        the check and the update share one write transaction, so two never both win."""
        self._check_space(int(row["size"]))
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
        settle = timedelta(seconds=self.cfg.detect.settle_seconds)
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

    def _check_space(self, size: int) -> None:
        free = self.ctx.spool_free_bytes()
        reserve = self.cfg.ingest.spool_reserve_bytes
        if free - size < reserve:
            if not self._spool_low_reported:
                with self.ctx.ledger.tx() as conn:
                    events.emit(conn, "spool.low", free_bytes=free, reserve_bytes=reserve)
                self._spool_low_reported = True
            raise SpoolFullError(
                f"spool {self.ctx.spool} has {free} bytes free; copying {size} more would go "
                f"below ingest.spool_reserve_bytes ({reserve}). Ingest paused: free space or "
                "archive and release older recordings"
            )
        self._spool_low_reported = False

    # --- copying ---------------------------------------------------------------------------

    def ingest(self, row: sqlite3.Row) -> Outcome:
        rid, serial = str(row["id"]), str(row["serial"])
        try:
            return self._copy(row)
        except SourceStalledError as exc:
            return self._stalled(row, exc)
        except (OSError, SourceChangedError, IntegrityError) as exc:
            reason = _reason(exc)
            logger.warning(
                "recording %s (%s on %s): copy failed: %s; will retry",
                rid,
                row["source_path"],
                serial,
                reason,
            )
            with self.ctx.ledger.tx() as conn:
                _fail(conn, rid, serial, reason)
            return Outcome(rid, "failed", reason=reason)
        finally:
            with self._lock:
                self._busy.discard(int(row["device_id"]))
                self.ctx.device_locks.release(int(row["device_id"]))

    def _stalled(self, row: sqlite3.Row, exc: SourceStalledError) -> Outcome:
        """The bay fails, not the agent: the recording is failed, the recorder flagged and
        skipped until it docks again, and the worker goes back to the other bays."""
        rid, serial, device = str(row["id"]), str(row["serial"]), int(row["device_id"])
        reason = str(exc)
        logger.error("recorder %s: %s (recording %s)", serial, reason, rid)
        self.stalled.add(device)
        with self.ctx.ledger.tx() as conn:
            _fail(conn, rid, serial, reason)
            device_rows.record_error(conn, str(row["vendor"]), serial, reason, auth=False)
            events.emit(
                conn, "recorder.error", serial=serial, vendor=row["vendor"], driver=None,
                handle=None, stage="read", code="read_stalled", message=reason,
            )  # fmt: skip
        return Outcome(rid, "failed", reason=reason)

    def _copy(self, row: sqlite3.Row) -> Outcome:
        rid, serial = str(row["id"]), str(row["serial"])
        # Laid out by ids the agent owns: no recorder-supplied string names a spool path.
        dest = spoolsweep.dest_for(
            self.ctx.spool, int(row["device_id"]), rid, str(row["source_path"])
        )
        total = int(row["size"])
        done = 0

        def on_bytes(n: int) -> None:
            nonlocal done
            done += n
            if self.progress:
                self.progress(serial, rid, done, total)

        result = copy_file(
            Path(row["volume"]),
            bytes(row["source_path_raw"]),
            total,
            int(row["mtime_ns"]),
            dest,
            self.ctx.spool_tmp,
            chunk=self.cfg.ingest.chunk_bytes,
            verify=self.cfg.ingest.verify_reread,
            progress=on_bytes,
            seal=self.ctx.seal,
            stall_seconds=self.cfg.ingest.stall_seconds,
            sm3=self.cfg.crypto.suite == "sm",
            # A closed interview segment is sealed in its volume: copy its plaintext.
            source_keys=self.ctx.keyring if row["vendor"] == "interview" else None,
        )
        quarantine = self.ctx.inventory_status(row["vendor"], serial)[2]
        quarantine = quarantine or is_unknown_volume(row["volume"])
        at = clock.now_iso()
        with self.ctx.ledger.tx() as conn:
            refused = identifiers.refused_reason(conn, rid)
            state = "quarantined" if quarantine or refused else "spooled"
            rec.transition(
                conn,
                rid,
                state,
                fields={
                    "sha256": result.sha256,
                    "spool_path": stationpaths.spool_stored(self.cfg, dest),
                    "spooled_at": at,
                    "verified_at": at if result.verified else None,
                    "source_size_at_hash": total,
                    "source_mtime_ns_at_hash": row["mtime_ns"],
                    "spool_key_id": result.key_id,
                    "sm3": result.sm3,
                    "size": result.size,  # the plaintext's, also of a sealed source
                    "deadline_met_at": at,
                    "reason": refused,
                },
                custody_type=f"recording.{state}",
                payload={
                    "sha256": result.sha256,
                    "size": result.size,
                    "alg": "sha256",
                    **({"sm3": result.sm3} if result.sm3 else {}),
                    "spool_path": stationpaths.spool_stored(self.cfg, dest),
                    "verified_reread": result.verified,
                    **(
                        {"encrypted": {"suite": result.suite, "key": result.key_id}}
                        if result.key_id
                        else {}
                    ),  # fmt: skip
                    "source": row["source_path"],
                    "serial": serial,
                    **({"identity_refused": refused} if refused else {}),
                },
                event="ingest.completed",
                event_fields={
                    "recording": rid,
                    "serial": serial,
                    "sha256": result.sha256,
                    "size": result.size,
                    "state": state,
                },
            )
        crashpoint.hit("ingest.after_commit")
        return Outcome(rid, state, result.sha256, size=result.size)

    # --- crash recovery --------------------------------------------------------------------

    def recover(self) -> int:
        """After a crash: `copying` rows go back to `discovered`, stale temp files go.

        Only when no other agent process is copying into this spool: another process's
        `copying` rows and files are work in progress, not leftovers (see agent.ledger.copylocks).
        Safe to call periodically: it does nothing while a copy of this process is running.
        """
        with self._lock:
            if self._busy:
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


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} (errno {exc.errno})"
    return str(exc)


def _fail(conn: sqlite3.Connection, rid: str, serial: str, reason: str) -> None:
    """A copy that failed: the recording is `failed` (retried later), in custody and events."""
    rec.transition(
        conn,
        rid,
        "failed",
        fields={"reason": reason},
        custody_type="recording.failed",
        payload={"reason": reason},
        event="ingest.failed",
        event_fields={"recording": rid, "serial": serial, "reason": reason},
    )
