"""Archive spooled recordings (earliest deadline first) and release them through the gate.

The store is chosen by `archive.url` (agent.archive.stores.open_store). A recording becomes
`archived` only after the store confirmed the object, its checksum and its retention; the
ledger row, its custody event and the `archive.completed` event commit together. Problems
come in two kinds: the store's (down, credentials, bucket, clock: the whole queue waits with
backoff, one `archive.failed` event per outage) and one recording's (spool copy damaged or
unreadable, object failed verification: that recording backs off, the others go on). The
queue is the ledger itself, so it survives restarts; open multipart uploads resume.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

from agent.archive import docs as archive_docs
from agent.archive import objects as archive_objects
from agent.archive.store import ObjectSpec, Store, Stored, spec_for
from agent.archive.stores import open_store
from agent.archive.throttle import current_limit, seconds_until_change
from agent.core import clock, crashpoint, rehash
from agent.core.errors import (
    ArchiveError,
    ArchiveVerifyError,
    EnvelopeError,
    IntegrityError,
    SpoolIntegrityError,
)
from agent.ledger import events, integrity, kv
from agent.ledger import paths as stationpaths
from agent.ledger import recordings as rec
from agent.station.context import Context

logger = logging.getLogger(__name__)

MAINTENANCE_SECONDS = 30.0  # anchors and sidecars while idle
STORE_SWEEP_SECONDS = 3600.0  # abandoned multipart uploads
INTEGRITY_RETRY_SECONDS = 3600.0  # damaged spool copies and failed verifications


class Archiver:
    def __init__(
        self,
        ctx: Context,
        store: Store | None = None,
        maintain_when_idle: bool = True,
    ) -> None:
        """Uploads only: the wipe gate is the daemon's `release` loop (agent.retention.release).
        With `maintain_when_idle` an idle step also runs maintenance (one-shot use and tests);
        the daemon runs maintenance in its own `archive-maintain` loop instead."""
        self.ctx = ctx
        self._maintain_when_idle = maintain_when_idle
        self.cfg = ctx.cfg
        self.store = store or open_store(ctx)
        self._backoff = 0.0
        self._store_error: str | None = None
        self._maintained = 0.0
        self._swept = 0.0
        # Several archive threads (archive.parallel_uploads) share one Archiver.
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._maint_lock = threading.Lock()

    # --- scheduling ----------------------------------------------------------------------

    def pending(self, limit: int = 1) -> list[sqlite3.Row]:
        """Earliest deadline first among spooled recordings not backing off."""
        return self.ctx.ledger.query(
            "SELECT r.*, d.serial FROM recordings r JOIN devices d ON d.id = r.device_id"
            " WHERE r.state='spooled' AND r.spool_removed_at IS NULL"
            " AND (r.archive_retry_at IS NULL OR r.archive_retry_at <= ?)"
            " ORDER BY r.priority DESC, r.deadline ASC, r.start ASC LIMIT ?",
            (clock.now_iso(), limit),
        )

    def next_pending(self) -> sqlite3.Row | None:
        rows = self.pending()
        return rows[0] if rows else None

    def claim(self) -> sqlite3.Row | None:
        """The next recording no other archive thread is working on (and plan the one after)."""
        with self._lock:
            rows = [r for r in self.pending(len(self._busy) + 2) if r["id"] not in self._busy]
            if not rows:
                return None
            self._busy.add(rows[0]["id"])
        prepare = getattr(self.store, "prepare", None)
        if prepare is not None and len(rows) > 1:
            prepare(self._spool(rows[1]), int(rows[1]["size"]))
        return rows[0]

    def _spool(self, row: sqlite3.Row) -> Path:
        path = stationpaths.spool_file(self.ctx.cfg, row["spool_path"])
        if path is None:
            raise IntegrityError(f"recording {row['id']} has no spool copy recorded")
        return path

    def bandwidth_now(self) -> int | None:
        """Apply the cap in force now to the store's limiter; returns it (0 = paused)."""
        local = clock.local(clock.now(), self.cfg.station.timezone)
        limit = current_limit(self.cfg.archive, local)
        limiter = getattr(self.store, "limiter", None)
        if limiter is not None and limiter.rate != limit:
            limiter.set_rate(limit)
            logger.info("upload bandwidth now %s", "unlimited" if limit is None else f"{limit} B/s")
        return limit

    def step(self) -> float:
        """One round of the archive thread; returns the seconds to wait before the next."""
        try:
            if self.bandwidth_now() == 0:
                self._idle_maintenance()
                local = clock.local(clock.now(), self.cfg.station.timezone)
                return min(seconds_until_change(self.cfg.archive, local), 60.0)
            row = self.claim()
            if row is None:
                self._idle_maintenance()
                return 1.0
            try:
                self.archive_one(row)
            finally:
                with self._lock:
                    self._busy.discard(row["id"])
        except ArchiveError as exc:
            return self._store_failed(exc)
        except InterruptedError:
            return 0.0
        return 0.0

    # --- one recording -------------------------------------------------------------------

    def archive_one(self, row: sqlite3.Row) -> bool:
        """Store, verify and commit one recording. Raises ArchiveError for store-wide faults."""
        rid = str(row["id"])
        spec = spec_for(self.ctx, row)
        started = time.monotonic()
        crashpoint.hit("archive.before_put")
        try:
            stored = self.store.put(self._spool(row), spec)
        except InterruptedError:
            raise  # shutting down: the upload stays resumable, nothing failed
        except SpoolIntegrityError as exc:
            self._integrity_violation(row, exc)
            return False
        except ArchiveVerifyError as exc:
            # Each new attempt leaves another locked version behind: try again only slowly.
            self._recording_failed(row, exc, at_least=INTEGRITY_RETRY_SECONDS)
            return False
        except ArchiveError as exc:
            if exc.store_wide:
                raise
            self._recording_failed(row, exc)
            return False
        except (IntegrityError, OSError) as exc:
            self._recording_failed(row, exc)
            return False
        crashpoint.hit("archive.after_put")
        self._commit(row, spec, stored)
        self._store_ok()
        self._note_rate(spec.size, time.monotonic() - started)
        logger.info("recording %s archived as %s", rid, stored.ref)
        self._after_archive(rid, stored)
        return True

    def _commit(self, row: sqlite3.Row, spec: ObjectSpec, stored: Stored) -> None:
        rid, at = str(row["id"]), clock.now_iso()
        lock = stored.lock
        with self.ctx.ledger.tx() as conn:
            # With release_after = "spooled" the wipe gate may have released it meanwhile:
            # `released` stays (the source is gone), the archive fields are added to it.
            now = conn.execute("SELECT state FROM recordings WHERE id=?", (rid,)).fetchone()
            archive_objects.record_upload(conn, rid, self.store.scheme, spec, stored, at)
            rec.transition(
                conn,
                rid,
                "released" if now is not None and now["state"] == "released" else "archived",
                fields={
                    "archive_ref": stored.ref,
                    "archive_verified_at": at,
                    "archived_at": at,
                    "archive_error": None,
                    "archive_retry_at": None,
                },
                custody_type="recording.archived",
                payload={
                    "ref": stored.ref,
                    "sha256": spec.sha256,
                    "off_station": self.store.off_station,
                    "checksum": stored.checksum,
                    "retain_mode": lock.mode,
                    "retain_until": clock.iso(lock.retain_until),
                    "legal_hold": lock.legal_hold,
                    **({"encryption": stored.encryption} if stored.encryption else {}),
                },
                event="archive.completed",
                event_fields={"recording": rid, "ref": stored.ref, "size": spec.size},
            )

    def _after_archive(self, rid: str, stored: Stored) -> None:
        """Best effort after the commit: sidecar now (else at maintenance), sampled audit."""
        try:
            archive_docs.ship_sidecar(self.ctx, self.store, rid)
        except (ArchiveError, OSError) as exc:
            logger.warning("sidecar of %s not written yet (%s); will retry", rid, exc)
        rate = self.cfg.archive.audit_sample_rate
        if rate > 0 and random.random() < rate:
            self.audit(rid)

    # --- failures ------------------------------------------------------------------------

    def _retry_later(self, row: sqlite3.Row, reason: str, at_least: float = 0.0) -> float:
        a = self.cfg.archive
        attempts = int(row["archive_attempts"] or 0) + 1
        wait = max(min(a.retry_min_seconds * 2 ** (attempts - 1), a.retry_max_seconds), at_least)
        with self.ctx.ledger.tx() as conn:
            retry_at = clock.iso(clock.now() + timedelta(seconds=wait))
            rec.schedule_archive_retry(conn, row["id"], attempts, retry_at, reason)
        return wait

    def _recording_failed(
        self, row: sqlite3.Row, exc: BaseException, at_least: float = 0.0
    ) -> None:
        rid, reason = str(row["id"]), str(exc)[:500]
        wait = self._retry_later(row, reason, at_least)
        logger.warning("recording %s not archived: %s; retrying in %.1f s", rid, reason, wait)
        with self.ctx.ledger.tx() as conn:
            events.emit(conn, "archive.failed", recording=rid, reason=reason, retry_in_s=wait)

    def _integrity_violation(self, row: sqlite3.Row, exc: BaseException) -> None:
        rid, reason = str(row["id"]), str(exc)[:500]
        self._retry_later(row, reason, at_least=INTEGRITY_RETRY_SECONDS)
        logger.error("recording %s: %s", rid, reason)
        with self.ctx.ledger.tx() as conn:
            integrity.report_violation(
                conn, rid, "spool", {"path": row["spool_path"], "reason": reason}
            )

    def _store_failed(self, exc: ArchiveError) -> float:
        with self._lock:
            return self._store_failed_locked(exc)

    def _store_failed_locked(self, exc: ArchiveError) -> float:
        a = self.cfg.archive
        self._backoff = min(max(self._backoff * 2, a.retry_min_seconds), a.retry_max_seconds)
        reason = str(exc)[:500]
        kind = type(exc).__name__
        if kind != self._store_error:
            # Once per outage (or per new kind of fault), not once per retry.
            logger.error("archive store: %s (retrying in %.1f s)", reason, self._backoff)
            with self.ctx.ledger.tx() as conn:
                events.emit(
                    conn, "archive.failed", scope="store", reason=reason, retry_in_s=self._backoff
                )
                self.ctx.ledger.set_kv(conn, "archive.last_error", reason)
            self._store_error = kind
        else:
            logger.warning(
                "archive store still failing (%s); retrying in %.1f s", reason, self._backoff
            )
        return self._backoff

    def _store_ok(self) -> None:
        with self._lock:
            self._store_ok_locked()

    def _store_ok_locked(self) -> None:
        if self._store_error is not None:
            logger.info("archive store works again")
            with self.ctx.ledger.tx() as conn:
                kv.remove(conn, "archive.last_error")
        self._store_error, self._backoff = None, 0.0

    def _note_rate(self, size: int, seconds: float) -> None:
        if size < (1 << 20) or seconds <= 0:
            return  # small objects measure latency, not bandwidth
        old = float(self.ctx.ledger.get_kv("archive.rate_bps") or 0)
        rate = size / seconds if not old else 0.7 * old + 0.3 * size / seconds
        with self.ctx.ledger.tx() as conn:
            self.ctx.ledger.set_kv(conn, "archive.rate_bps", f"{rate:.0f}")

    # --- idle work -----------------------------------------------------------------------

    def _idle_maintenance(self) -> None:
        if self._maintain_when_idle:
            self.maintain()

    def maintain(self, force: bool = False) -> None:
        """Anchors, sidecars and (hourly) abandoned uploads; store faults propagate."""
        if not self._maint_lock.acquire(blocking=False):
            return  # another archive thread is at it
        try:
            self._maintain(force)
        finally:
            self._maint_lock.release()

    def _maintain(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._maintained < MAINTENANCE_SECONDS:
            return
        self._maintained = now
        archive_docs.ship_anchors(self.ctx, self.store)
        archive_docs.sync_sidecars(self.ctx, self.store)
        if force or now - self._swept >= STORE_SWEEP_SECONDS or not self._swept:
            self._swept = now
            self.store.housekeep_store()

    def audit(self, rid: str) -> bool:
        """Read a stored object back in full and re-hash it; a mismatch is a violation."""
        row = self.ctx.ledger.one("SELECT archive_ref, sha256 FROM recordings WHERE id=?", (rid,))
        if row is None or not row["archive_ref"]:
            return False
        try:
            with self.store.open_read(row["archive_ref"]) as f:
                digest, _ = rehash.sha256_stream(f)
        except EnvelopeError as exc:  # an encrypted object that fails authentication
            logger.error("recording %s: %s", rid, exc)
            digest = f"undecryptable: {exc}"[:300]
        ok = digest == row["sha256"]
        with self.ctx.ledger.tx() as conn:
            archive_objects.record_audit(conn, rid, ok, clock.now_iso())
            if not ok:
                integrity.report_violation(
                    conn, rid, "archive", {"ref": row["archive_ref"], "actual": digest}
                )
        logger.log(
            logging.INFO if ok else logging.ERROR,
            "audit of %s: %s",
            rid,
            "ok" if ok else "MISMATCH",
        )
        return ok
