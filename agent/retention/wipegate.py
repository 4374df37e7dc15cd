"""The wipe gate: the only code that may erase a recording from a recorder.

A recording may be erased only when all four hold (DESIGN.md):
  1. the ledger shows its spool copy was made durable and verified;
  2. the source's size and mtime are unchanged since it was hashed;
  3. the configured release point (`spooled` or `archived`, off-station) is reached;
  4. the ledger row saying all that is committed (re-read through a fresh connection).
Any doubt keeps the source. `ingest DIR` never calls this.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.config.loader import AgentConfig
from agent.core import crashpoint
from agent.core.safefs import display, stat_beneath, unlink_beneath
from agent.ledger import custody, events
from agent.ledger import recordings as rec
from agent.ledger.db import Ledger

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def _off_station(cfg: AgentConfig, archive_ref: str | None) -> bool:
    if not archive_ref:
        return False
    if archive_ref.startswith("file://"):
        return cfg.archive.off_station
    return True  # s3:// and other remote stores are off the station by construction


def _spool_copy_present(row: sqlite3.Row) -> bool:
    try:
        return Path(row["spool_path"]).stat().st_size == row["size"]
    except OSError:
        return False


def check(cfg: AgentConfig, row: sqlite3.Row, committed: sqlite3.Row | None) -> Decision:
    policy = cfg.ingest.release_after
    if policy == "never":
        return Decision(False, "ingest.release_after is 'never'")
    if row["state"] == "quarantined" or row["state"] not in ("spooled", "archived"):
        return Decision(False, f"state is {row['state']}")
    # 1. durable, verified spool copy
    if not (row["sha256"] and row["spool_path"] and row["spooled_at"] and row["verified_at"]):
        return Decision(False, "no durable, verified spool copy recorded")
    if row["state"] == "spooled" and not _spool_copy_present(row):
        # Not archived yet: the spool copy the ledger vouches for is the only other copy.
        return Decision(False, f"spool copy {row['spool_path']} is missing or has the wrong size")
    # 2. source unchanged since hashing
    try:
        st = stat_beneath(row["volume"], bytes(row["source_path_raw"]))
    except OSError as exc:
        return Decision(False, f"cannot stat source: {exc}")
    if (st.st_size, st.st_mtime_ns) != (row["source_size_at_hash"], row["source_mtime_ns_at_hash"]):
        return Decision(False, "source changed since it was hashed")
    # 3. release point
    if policy == "archived":
        if row["state"] != "archived" or not row["archive_verified_at"]:
            return Decision(False, "not yet archived and verified")
        if not _off_station(cfg, row["archive_ref"]):
            return Decision(
                False,
                "archive is on this station (set archive.off_station only "
                "for a NAS or other off-station mount)",
            )
    # 4. the ledger row is committed and says the same
    if committed is None:
        return Decision(False, "ledger row not committed")
    for col in (
        "state",
        "sha256",
        "verified_at",
        "archive_verified_at",
        "source_size_at_hash",
        "source_mtime_ns_at_hash",
    ):
        if committed[col] != row[col]:
            return Decision(False, f"committed ledger row differs ({col})")
    return Decision(True, "all four conditions hold")


def committed_row(db_path: Path, rid: str) -> sqlite3.Row | None:
    """Read the row through a brand-new connection: only committed data is visible there."""
    conn = sqlite3.connect(db_path, timeout=60)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM recordings WHERE id = ?", (rid,)).fetchone()
    finally:
        conn.close()


def release(cfg: AgentConfig, ledger: Ledger, rid: str) -> Decision:
    """Erase recording `rid` from its recorder if the gate holds. Returns the decision."""
    row = rec.get(ledger.connect(), rid)
    if row is None:
        return Decision(False, "unknown recording")
    decision = check(cfg, row, committed_row(ledger.path, rid))
    if not decision.allowed:
        logger.debug("recording %s kept on recorder: %s", rid, decision.reason)
        return decision
    # Commit `released` first: a crash before the unlink leaves a harmless extra source file;
    # the other order could leave a ledger that claims a file the recorder still lost.
    with ledger.tx() as conn:
        rec.set_state(conn, rid, "released", released_at=rec.now_iso())
        custody.append(
            conn,
            "recording.released",
            {
                "source": row["source_path"],
                "serial": row["serial"],
                "policy": cfg.ingest.release_after,
            },
            recording_id=rid,
        )
        events.emit(conn, "recording.released", recording=rid, serial=row["serial"])
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
