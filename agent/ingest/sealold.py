"""Encrypting the plaintext spool copies an older version wrote, in the background (issue 19).

One recording per pass, at a bounded rate (`crypto.encrypt_existing_bytes_per_second`): the
plaintext copy is read once, sealed and hashed into a temp file in `<spool>/.sealing/`, made
durable and read back (agent.core.copier); only when the plaintext hash equals the ledger's
SHA-256 does a rename put the envelope in the plaintext's place, inside the transaction that
records `spool_key_id` and the custody event `recording.encrypted`. So the plaintext copy is
replaced, never deleted, and only by an encrypted copy that verified. A crash before the rename
leaves the plaintext and a staged file (cleared before the next pass); after it, an envelope
the ledger does not know yet, which the next pass records.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from agent.core import crashpoint, envelope, sealedio
from agent.core.copier import copy_file
from agent.core.errors import AgentError
from agent.core.safefs import fsync_dir
from agent.ledger import custody
from agent.ledger import paths as stationpaths
from agent.ledger import recordings as rec
from agent.station.context import Context

logger = logging.getLogger(__name__)

IDLE_SECONDS = 300.0
STAGE = ".sealing"
_skip: set[str] = set()  # recordings whose copy no longer matches: verify reports them


def pending(ctx: Context, limit: int = 1) -> list[sqlite3.Row]:
    """Recordings whose spool copy is (as far as the ledger knows) plaintext."""
    return ctx.ledger.query(
        "SELECT id, sha256, size, spool_path FROM recordings WHERE spool_path IS NOT NULL"
        " AND spool_key_id IS NULL AND spool_path NOT LIKE '/%' AND spool_removed_at IS NULL"
        " AND sha256 IS NOT NULL AND state IN ('spooled','archived','released','quarantined')"
        " ORDER BY id LIMIT ?",
        (limit + len(_skip),),
    )


def step(ctx: Context, progress: Callable[[int], None] | None = None) -> float:
    """Encrypt one plaintext copy; returns the seconds to wait (the rate bound)."""
    rate = ctx.cfg.crypto.encrypt_existing_bytes_per_second
    if ctx.seal is None or rate <= 0:
        return IDLE_SECONDS
    rows = [r for r in pending(ctx) if r["id"] not in _skip]
    if not rows:
        return IDLE_SECONDS
    clear_stage(ctx)
    done = seal_one(ctx, rows[0], progress)
    return done / rate if done else 0.0


def run_all(ctx: Context) -> tuple[int, list[str]]:
    """Every plaintext copy now, at full speed (the command; the daemon must be stopped).
    Returns (copies encrypted, ids left as they are)."""
    clear_stage(ctx)
    done = 0
    while rows := [r for r in pending(ctx) if r["id"] not in _skip]:
        done += seal_one(ctx, rows[0], None) > 0
    return done, sorted(_skip)


def _stage_dir(ctx: Context) -> Path:
    """Where envelopes are made: in the spool (one file system, so the rename is atomic), in a
    dot directory the spool sweep leaves alone, written by this module only."""
    path = ctx.spool / STAGE
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def clear_stage(ctx: Context) -> None:
    """Leftovers of a pass cut off before its rename: the plaintext copy is still in place.
    Called between passes only (one pass at a time: the daemon's thread, or the command with
    the daemon stopped)."""
    for f in _stage_dir(ctx).iterdir():
        if f.is_file() and not f.is_symlink():
            f.unlink()


def seal_one(ctx: Context, row: sqlite3.Row, progress: Callable[[int], None] | None) -> int:
    """Encrypt one recording's spool copy in place; returns the plaintext bytes sealed."""
    rid = str(row["id"])
    path = stationpaths.spool_file(ctx.cfg, row["spool_path"])
    seal = ctx.seal
    if path is None or seal is None or not path.exists():
        _skip.add(rid)  # a missing copy is the spool sweep's and verify's to report
        return 0
    kid = envelope.kek_id(seal.kek).hex()
    if sealedio.is_sealed(path):  # replaced before a crash, not yet recorded
        with open(path, "rb") as f:
            head = envelope.parse_header(f.read(envelope.HEADER_SIZE), str(path))
        wrapped = head.key_ids(envelope.SLOT_STATION)
        _record(ctx, rid, wrapped[0].hex() if wrapped else kid, row, recorded_only=True)
        return 0
    st = os.stat(path)
    stage = _stage_dir(ctx)
    staged = stage / f"{rid}.sealed"
    try:
        result = copy_file(path.parent, path.name.encode(), st.st_size, st.st_mtime_ns, staged,
                           stage, verify=True, progress=progress, seal=seal)  # fmt: skip
    except AgentError as exc:
        _skip.add(rid)  # tried again after a restart
        logger.warning("recording %s: spool copy not encrypted yet: %s", rid, exc)
        return 0
    if result.sha256 != row["sha256"] or not result.verified:
        staged.unlink(missing_ok=True)
        _skip.add(rid)
        logger.error(
            "recording %s: spool copy %s no longer matches its SHA-256; left as it is "
            "(run `evidence-agent verify`)", rid, path,
        )  # fmt: skip
        return 0
    crashpoint.hit("sealold.before_rename")
    with ctx.ledger.tx() as conn:
        os.rename(staged, path)  # the plaintext is replaced by its verified envelope
        fsync_dir(path.parent)
        _write(conn, rid, kid, row, recorded_only=False)
    return int(row["size"])


def _record(ctx: Context, rid: str, kid: str, row: sqlite3.Row, recorded_only: bool) -> None:
    with ctx.ledger.tx() as conn:
        _write(conn, rid, kid, row, recorded_only)


def _write(
    conn: sqlite3.Connection, rid: str, kid: str, row: sqlite3.Row, recorded_only: bool
) -> None:
    rec.set_spool_key(conn, [rid], kid)
    payload = {"spool_path": row["spool_path"], "sha256": row["sha256"], "key": kid}
    payload["suite"] = "aes-256-gcm"
    if recorded_only:
        payload["recorded_only"] = "true"
    custody.append(conn, "recording.encrypted", payload, recording_id=rid)
