"""Ingest: register a volume's files in the ledger, then copy them durably, EDF order.

`register_volume` is idempotent (the ledger is the truth, events are hints); `claim` picks
the next recording by priority, then earliest deadline, then oldest start, skipping recorders
another worker is already reading; `ingest` copies one recording and commits the result
with its custody and outbox events in one transaction.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent.core import clock, crashpoint
from agent.core.copier import copy_file
from agent.core.errors import IntegrityError, SourceChangedError, SpoolFullError
from agent.core.ids import safe_topic_id
from agent.core.safefs import open_beneath
from agent.ledger import custody, events
from agent.ledger import recordings as rec
from agent.recorders import recclock
from agent.recorders.inventory import canonical_vendor
from agent.recorders.linker import Linker
from agent.recorders.naming import parse_name
from agent.recorders.volume import Issue, ScanResult, SourceFile, identify_volume, scan
from agent.rules.mediainfo import probe
from agent.rules.workcal import deadline as compute_deadline
from agent.station.context import Context
from agent.tagging import autotag
from drivers.base import DeviceIdentity

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, str, int, int], None]  # serial, recording id, done, total


@dataclass
class VolumeReport:
    volume: Path
    serial: str
    device_id: int
    files: int = 0
    new: int = 0
    updated: int = 0
    issues: list[Issue] = field(default_factory=list)
    quarantine: bool = False


@dataclass
class Outcome:
    recording_id: str
    state: str
    sha256: str | None = None
    reason: str | None = None
    size: int = 0


class Ingestor:
    def __init__(self, ctx: Context, progress: ProgressFn | None = None) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.progress = progress
        self._lock = threading.Lock()
        self._busy: set[int] = set()  # device ids with a copy in progress (one reader each)
        self._spool_low_reported = False
        # Links volumes to recorders the USB/serial drivers identified (the daemon shares its
        # linker with the driver threads; alone, it still links through the ledger).
        self.linker = Linker()

    # --- discovery -------------------------------------------------------------------------

    def register_volume(
        self, root: Path, ident: DeviceIdentity | None = None, pin: bool = False
    ) -> VolumeReport:
        """Register a volume's files. With `pin`, this process takes the recorder for itself
        (see agent.ledger.copylocks) before other processes can see its new recordings."""
        result = scan(root, self.cfg)
        ident = identify_volume(root, self.cfg, result, ident)
        ident = self.linker.link(self.ctx.ledger.connect(), root, ident)
        metas = [(f, self._file_fields(root, f, ident)) for f in result.files]
        tags = autotag.prepare(self.ctx, root, result)  # sidecars are read outside the tx
        with self.ctx.ledger.tx() as conn:
            ident = replace(ident, vendor=canonical_vendor(conn, ident.vendor, ident.serial))
            registered, inv_status, quarantine = self.ctx.inventory_status(
                ident.vendor, ident.serial
            )
            newly = self._dock(conn, root, ident, registered, inv_status, quarantine)
            if pin and not self.ctx.device_locks.try_acquire(newly, pin=True):
                logger.info(
                    "recorder %s is being copied by another agent process; sharing it", ident.serial
                )
            offset = recclock.pending_offset(conn, self.ctx, newly)
            report = VolumeReport(
                root,
                ident.serial,
                newly,
                len(result.files),
                issues=result.issues,
                quarantine=quarantine,
            )
            placed = []
            for f, fields in metas:
                rid, what = rec.discover_file(conn, report.device_id, f, fields)
                placed.append((f, rid, what))
                report.new += what == "new"
                report.updated += what == "updated"
                if offset is not None and what != "known":
                    recclock.correct_recording(conn, self.ctx, rid, offset)
            tags.apply(conn, placed)  # assignment rules and sidecars (agent.tagging.autotag)
            self._record_issues(conn, root, ident.serial, result)
        logger.info(
            "volume %s (recorder %s, serial from %s): %d evidence files, %d new, %d other entries",
            root,
            ident.serial,
            ident.source,
            report.files,
            report.new,
            len(result.issues),
        )
        return report

    def _dock(
        self,
        conn: sqlite3.Connection,
        root: Path,
        ident: DeviceIdentity,
        registered: bool,
        inv_status: str | None,
        quarantine: bool,
    ) -> int:
        before = conn.execute(
            "SELECT docked, volume FROM devices WHERE vendor=? AND serial=?",
            (ident.vendor, ident.serial),
        ).fetchone()
        device_id = rec.upsert_device(conn, ident, str(root), registered, inv_status)
        # A recorder a driver already reported docked (volume still NULL) was announced then.
        if before is None or not before["docked"] or before["volume"] not in (None, str(root)):
            events.emit(
                conn,
                "recorder.docked",
                serial=ident.serial,
                vendor=ident.vendor,
                volume=str(root),
                serial_source=ident.source,
            )
            if quarantine:
                events.emit(conn, "recorder.unknown", serial=ident.serial, vendor=ident.vendor)
        return device_id

    def _file_fields(self, root: Path, f: SourceFile, ident: DeviceIdentity) -> dict[str, Any]:
        tz = self.cfg.station.timezone
        parsed = parse_name(f.name, self.cfg.ingest.naming_patterns, tz)
        mtime = clock.from_mtime_ns(f.mtime_ns)
        start, start_src = (
            (parsed.start, f"name:{parsed.pattern}")
            if parsed and parsed.start
            else (mtime, "mtime")
        )
        try:
            fd = open_beneath(root, f.rel)
            try:
                info = probe(fd)
            finally:
                os.close(fd)
            duration, playable, why = info.duration_s, info.playable, info.reason
        except OSError as exc:
            duration, playable, why = None, None, f"cannot read: {exc}"
        if duration is not None and start_src != "mtime":
            end, end_src = start + timedelta(seconds=duration), "container"
        else:
            end, end_src = mtime, "mtime"
        due = compute_deadline(end, self.ctx.default_rule, self.ctx.calendar)
        return {
            "officer_id": (parsed.officer if parsed else None) or ident.officer_id,
            "unit_id": ident.unit_id,
            "start": clock.iso(start),
            "end": clock.iso(end),
            "start_source": start_src,
            "end_source": end_src,
            "duration_s": duration,
            "playable": None if playable is None else int(playable),
            "playable_reason": why,
            "deadline": clock.iso(due),
        }

    def _record_issues(
        self, conn: sqlite3.Connection, root: Path, serial: str, result: ScanResult
    ) -> None:
        at = rec.now_iso()
        for issue in result.issues:
            cur = conn.execute(
                "UPDATE volume_issues SET last_seen=?, reason=? WHERE volume=? AND path=?"
                " AND kind=?",
                (at, issue.reason, str(root), issue.path, issue.kind),
            )
            if cur.rowcount == 0:
                conn.execute(
                    "INSERT INTO volume_issues(volume, serial, path, kind, reason, first_seen,"
                    " last_seen) VALUES(?,?,?,?,?,?,?)",
                    (str(root), serial, issue.path, issue.kind, issue.reason, at, at),
                )
                if issue.kind != "ignored":
                    logger.warning(
                        "volume %s: %s %s: %s", root, issue.kind, issue.path, issue.reason
                    )

    def undock(self, root: Path) -> None:
        with self.ctx.ledger.tx() as conn:
            for serial in rec.undock(conn, str(root)):
                logger.info("recorder %s undocked (%s gone)", serial, root)

    # --- scheduling ------------------------------------------------------------------------

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
            busy = ",".join(str(i) for i in self._busy) or "-1"
            only = ""
            if device_ids is not None:
                only = f" AND r.device_id IN ({','.join(str(int(i)) for i in device_ids)})"
            if exclude:
                only += f" AND r.id NOT IN ({','.join(repr(str(x)) for x in exclude)})"
            rows = self.ctx.ledger.query(
                "SELECT r.*, d.serial, d.volume, d.vendor, d.registered, d.inventory_status"
                " FROM recordings r JOIN devices d ON d.id = r.device_id"
                f" WHERE d.docked = 1 AND r.device_id NOT IN ({busy}){only}"
                " AND ((r.state = 'discovered' AND r.stable_since <= ?)"
                "      OR (r.state = 'failed' AND r.updated_at <= ?))"
                " ORDER BY r.priority DESC, r.deadline ASC, r.start ASC LIMIT 16",
                (stable_before, retry_before),
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
            rec.set_state(conn, row["id"], "copying", attempts=row["attempts"] + 1)
            events.emit(
                conn,
                "ingest.started",
                recording=row["id"],
                serial=row["serial"],
                size=row["size"],
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
                f"SELECT id FROM recordings WHERE device_id IN ({','.join(map(str, device_ids))})"
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
                rec.set_state(conn, rid, "failed", reason=reason)
                custody.append(conn, "recording.failed", {"reason": reason}, recording_id=rid)
                events.emit(conn, "ingest.failed", recording=rid, serial=serial, reason=reason)
            return Outcome(rid, "failed", reason=reason)
        finally:
            with self._lock:
                self._busy.discard(int(row["device_id"]))
                self.ctx.device_locks.release(int(row["device_id"]))

    def _copy(self, row: sqlite3.Row) -> Outcome:
        rid, serial = str(row["id"]), str(row["serial"])
        ext = os.path.splitext(str(row["source_path"]))[1].lower()[:8]
        dest_dir = self.ctx.spool / safe_topic_id(serial)
        dest_dir.mkdir(exist_ok=True)
        dest = dest_dir / f"{rid}{ext}"
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
        )
        quarantine = self.ctx.inventory_status(row["vendor"], serial)[2]
        state = "quarantined" if quarantine else "spooled"
        at = rec.now_iso()
        with self.ctx.ledger.tx() as conn:
            rec.set_state(
                conn,
                rid,
                state,
                sha256=result.sha256,
                spool_path=str(dest),
                spooled_at=at,
                verified_at=at if result.verified else None,
                source_size_at_hash=total,
                source_mtime_ns_at_hash=row["mtime_ns"],
                deadline_met_at=at,
                reason=None,
            )
            custody.append(
                conn,
                f"recording.{state}",
                {
                    "sha256": result.sha256,
                    "size": total,
                    "alg": "sha256",
                    "spool_path": str(dest),
                    "verified_reread": result.verified,
                    "source": row["source_path"],
                    "serial": serial,
                },
                recording_id=rid,
            )
            events.emit(
                conn,
                "ingest.completed",
                recording=rid,
                serial=serial,
                sha256=result.sha256,
                size=total,
                state=state,
            )
        crashpoint.hit("ingest.after_commit")
        return Outcome(rid, state, result.sha256, size=total)

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
            n = conn.execute(
                "UPDATE recordings SET state='discovered' WHERE state='copying'"
            ).rowcount
        crashpoint.hit("ingest.recover")
        for tmp in self.ctx.spool_tmp.iterdir():
            tmp.unlink()
        self._sweep_orphans()
        if n:
            logger.info("recovered %d interrupted copies; they will be redone", n)
        return n

    def _vouched(self, f: Path) -> bool:
        # Spool files are named <recording id><ext> by _copy, the only writer of spool_path:
        # one primary-key lookup per file on disk, never a read of every recording.
        rid = f.name.split(".", 1)[0]
        row = self.ctx.ledger.one("SELECT spool_path FROM recordings WHERE id = ?", (rid,))
        return row is not None and row[0] == str(f)

    def _sweep_orphans(self) -> None:
        """Spool files no ledger row vouches for (renamed, then killed before commit)."""
        for sub in self.ctx.spool.iterdir():
            if not sub.is_dir() or sub.name.startswith("."):
                continue
            for f in sub.iterdir():
                if not self._vouched(f):
                    logger.info(
                        "removing unaccounted spool file %s (copy was interrupted "
                        "before its ledger commit; the source is still on the recorder)",
                        f,
                    )
                    f.unlink()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} (errno {exc.errno})"
    return str(exc)
