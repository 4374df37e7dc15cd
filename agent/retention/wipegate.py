"""The wipe gate: the only code that may erase a recording from a recorder.

A recording may be erased only when all four hold (docs/architecture.md):
  1. the ledger shows its spool copy was made durable and verified;
  2. the source's size and mtime are unchanged since it was hashed;
  3. the configured release point (`spooled` or `archived`, off-station) is reached;
  4. the ledger row saying all that is committed (re-read through a fresh connection).
Any doubt keeps the source. `ingest DIR` never calls this. An archived recording is
confirmed with the store itself immediately before erasing (agent.retention.releasecheck): a past
verification in the ledger is not enough.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.archive.store import Store
from agent.config.loader import AgentConfig
from agent.core import clock, crashpoint, envelope
from agent.core.errors import AgentError
from agent.core.safefs import display, stat_beneath, unlink_beneath
from agent.ledger import paths as stationpaths
from agent.ledger import recopy as recopied
from agent.ledger import recordings as rec
from agent.ledger.db import Ledger
from agent.retention.releasecheck import store_refusal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def _off_station(cfg: AgentConfig, archive_ref: str | None) -> bool:
    if not archive_ref:
        return False
    if archive_ref.startswith("file:"):  # file:KEY (relative) and legacy file:///abs
        return cfg.archive.off_station
    return True  # s3:// and other remote stores are off the station by construction


def _spool_copy_present(cfg: AgentConfig, row: sqlite3.Row) -> bool:
    try:
        path = stationpaths.spool_file(cfg, row["spool_path"])
        size = row["size"]
        if "spool_key_id" in row.keys() and row["spool_key_id"]:  # noqa: SIM118 - sqlite3.Row
            size = envelope.ciphertext_size(size)
        return path is not None and path.stat().st_size == size
    except (OSError, AgentError):
        return False


def check(cfg: AgentConfig, row: sqlite3.Row, committed: sqlite3.Row | None) -> Decision:
    """The four conditions, in order; the first that fails is the reason the source stays."""
    policy = cfg.ingest.release_after
    if policy == "never":
        return Decision(False, "ingest.release_after is 'never'")
    if row["state"] == "quarantined" or row["state"] not in ("spooled", "archived"):
        return Decision(False, f"state is {row['state']}")
    for condition in (_durable_copy, _source_unchanged, _release_point):
        reason = condition(cfg, row)
        if reason is not None:
            return Decision(False, reason)
    reason = _committed_same(row, committed)
    if reason is not None:
        return Decision(False, reason)
    return Decision(True, "all four conditions hold")


def _durable_copy(cfg: AgentConfig, row: sqlite3.Row) -> str | None:
    """1. a durable, verified spool copy."""
    if not (row["sha256"] and row["spool_path"] and row["spooled_at"] and row["verified_at"]):
        return "no durable, verified spool copy recorded"
    if row["state"] == "spooled" and not _spool_copy_present(cfg, row):
        # Not archived yet: the spool copy the ledger vouches for is the only other copy.
        return f"spool copy {row['spool_path']} is missing or has the wrong size"
    return None


def _source_unchanged(cfg: AgentConfig, row: sqlite3.Row) -> str | None:
    """2. the source is unchanged since it was hashed."""
    try:
        st = stat_beneath(row["volume"], bytes(row["source_path_raw"]))
    except OSError as exc:
        return f"cannot stat source: {exc}"
    if (st.st_size, st.st_mtime_ns) != (row["source_size_at_hash"], row["source_mtime_ns_at_hash"]):
        return "source changed since it was hashed"
    return None


def _release_point(cfg: AgentConfig, row: sqlite3.Row) -> str | None:
    """3. the configured release point is reached."""
    if cfg.ingest.release_after != "archived":
        return None
    if row["state"] != "archived" or not row["archive_verified_at"]:
        return "not yet archived and verified"
    if not _off_station(cfg, row["archive_ref"]):
        return (
            "archive is on this station (set archive.off_station only "
            "for a NAS or other off-station mount)"
        )
    return None


COMMITTED_COLUMNS = (
    "state",
    "sha256",
    "verified_at",
    "archive_verified_at",
    "source_size_at_hash",
    "source_mtime_ns_at_hash",
)


def _committed_same(row: sqlite3.Row, committed: sqlite3.Row | None) -> str | None:
    """4. the ledger row is committed and says the same."""
    if committed is None:
        return "ledger row not committed"
    for col in COMMITTED_COLUMNS:
        if committed[col] != row[col]:
            return f"committed ledger row differs ({col})"
    return None


def committed_row(db_path: Path, rid: str) -> sqlite3.Row | None:
    """Read the row through a brand-new connection: only committed data is visible there."""
    conn = sqlite3.connect(db_path, timeout=60)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM recordings WHERE id = ?", (rid,)).fetchone()
    finally:
        conn.close()


def release(cfg: AgentConfig, ledger: Ledger, rid: str, store: Store | None = None) -> Decision:
    """Erase recording `rid` from its recorder if the gate holds. Returns the decision.

    `store` is asked again right before erasing an archived recording; without one an
    archived recording is kept.
    """
    row = rec.get(ledger.connect(), rid)
    if row is None:
        return Decision(False, "unknown recording")
    decision = check(cfg, row, committed_row(ledger.path, rid))
    if recopied.mismatch_of(ledger.connect(), rid) is not None:
        # The recorder's file differs from the evidence (agent.ingest.recopy): always kept.
        decision = Decision(False, "a re-copy differed from the recorded SHA-256")
    if decision.allowed and row["state"] == "archived":
        refusal = store_refusal(cfg, store, row)
        if refusal is not None:
            decision = Decision(False, refusal)
    if not decision.allowed:
        logger.debug("recording %s kept on recorder: %s", rid, decision.reason)
        return decision
    # Commit `released` first: a crash before the unlink leaves a harmless extra source file;
    # the other order could leave a ledger that claims a file the recorder still lost.
    with ledger.tx() as conn:
        rec.transition(
            conn,
            rid,
            "released",
            fields={"released_at": clock.now_iso()},
            custody_type="recording.released",
            payload={
                "source": row["source_path"],
                "serial": row["serial"],
                "policy": cfg.ingest.release_after,
            },
            event="recording.released",
            event_fields={"recording": rid, "serial": row["serial"]},
        )
    crashpoint.hit("wipegate.after_commit")
    try:
        unlink_beneath(row["volume"], bytes(row["source_path_raw"]))
    except OSError as exc:
        logger.warning(
            "recording %s released but %s could not be erased from %s: %s",
            rid,
            display(bytes(row["source_path_raw"])),
            row["volume"],
            exc,
        )
    return decision
