"""Spool housekeeping: remove spool copies the archive verifiably holds, oldest first.

A copy stays `archive.spool_keep_days` after it was archived (fast local retrieval), or less
while free spool space is below `archive.spool_min_free_bytes`. Before each removal the store
is asked again (size, checksum, retention): a copy that is not verifiably archived right now
is never removed. The removal is a custody event; the ledger row keeps the hash and the
archive ref, so `verify` and `export` then use the archive.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from agent.archive.store import Store
from agent.core import clock
from agent.core.errors import ArchiveError, IntegrityError
from agent.core.safefs import fsync_dir
from agent.ledger import custody
from agent.ledger import paths as stationpaths
from agent.ledger import recordings as rec
from agent.station.context import Context

logger = logging.getLogger(__name__)


@dataclass
class HousekeepResult:
    removed: list[str] = field(default_factory=list)
    kept_unverified: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def _candidates(ctx: Context) -> list[sqlite3.Row]:
    return ctx.ledger.query(
        # INDEXED BY: without ANALYZE statistics SQLite prefers the state index, which walks
        # every archived recording; the partial index holds only spool copies still on disk.
        "SELECT id, spool_path, sha256, size, archive_ref, archived_at FROM recordings"
        " INDEXED BY recordings_spool_held"
        " WHERE state IN ('archived', 'released') AND archive_verified_at IS NOT NULL"
        " AND archive_ref IS NOT NULL AND spool_path IS NOT NULL AND spool_removed_at IS NULL"
        " AND archived_at IS NOT NULL ORDER BY archived_at ASC, id ASC"
    )


def housekeep(ctx: Context, store: Store) -> HousekeepResult:
    a = ctx.cfg.archive
    result = HousekeepResult()
    cutoff = clock.iso(clock.now() - timedelta(days=a.spool_keep_days)) or ""
    _finish_interrupted(ctx)
    for r in _candidates(ctx):
        pressure = ctx.spool_free_bytes() < a.spool_min_free_bytes
        if (r["archived_at"] or "") > cutoff and not pressure:
            break  # oldest first: everything after this one is younger still
        try:
            store.check(r["archive_ref"], r["sha256"], int(r["size"]))
        except InterruptedError:
            return result  # shutting down
        except ArchiveError as exc:
            if exc.store_wide:
                logger.warning("housekeeping paused, the archive cannot be checked: %s", exc)
                return result
            logger.warning("keeping spool copy of %s: archive check failed: %s", r["id"], exc)
            result.kept_unverified.append(r["id"])
            continue
        except IntegrityError as exc:
            logger.warning("keeping spool copy of %s: %s", r["id"], exc)
            result.kept_unverified.append(r["id"])
            continue
        why = "disk pressure" if pressure else f"kept {a.spool_keep_days:g} days after archiving"
        result.bytes_freed += _remove(ctx, r, why)
        result.removed.append(r["id"])
    if result.removed:
        logger.info(
            "housekeeping removed %d archived spool copies (%d bytes)",
            len(result.removed),
            result.bytes_freed,
        )
    return result


def _remove(ctx: Context, row: sqlite3.Row, why: str) -> int:
    path = stationpaths.spool_file(ctx.cfg, row["spool_path"])
    assert path is not None  # _candidates selects rows with a spool_path
    size = path.stat().st_size if path.exists() else 0
    at = clock.iso(clock.now())
    # Commit first: a crash before the unlink leaves a file the next pass removes; the other
    # order could leave a ledger pointing at a spool copy that no longer exists.
    with ctx.ledger.tx() as conn:
        rec.mark_spool_removed(conn, row["id"], at)
        custody.append(
            conn,
            "spool.removed",
            {"path": row["spool_path"], "reason": why, "archive_ref": row["archive_ref"]},
            recording_id=row["id"],
        )
    _unlink(path)
    return size


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def _finish_interrupted(ctx: Context) -> None:
    """Removals committed but not carried out (crash between commit and unlink).

    Only removals since the last finished pass are looked at (`housekeeping.checked_through`
    in kv, by the `recordings_spool_removed` index): the rest were unlinked long ago.
    """
    since = ctx.ledger.get_kv("housekeeping.checked_through")
    if since is None:
        # First pass on a ledger from before this mark: removals run one at a time, so only
        # the latest few can have been interrupted; never walk years of removals.
        row = ctx.ledger.one(
            "SELECT MIN(spool_removed_at) FROM (SELECT spool_removed_at FROM recordings"
            " WHERE spool_removed_at IS NOT NULL AND spool_path IS NOT NULL"
            " ORDER BY spool_removed_at DESC LIMIT 100)"
        )
        since = str(row[0]) if row and row[0] else ""
    latest = since
    for r in ctx.ledger.query(
        "SELECT spool_path, spool_removed_at FROM recordings WHERE spool_removed_at IS NOT NULL"
        " AND spool_path IS NOT NULL AND spool_removed_at >= ? ORDER BY spool_removed_at",
        (since,),
    ):
        p = stationpaths.spool_file(ctx.cfg, r["spool_path"])
        if p is not None and p.exists():
            _unlink(p)
        latest = max(latest, r["spool_removed_at"])
    if latest != since:
        with ctx.ledger.tx() as conn:
            ctx.ledger.set_kv(conn, "housekeeping.checked_through", latest)
