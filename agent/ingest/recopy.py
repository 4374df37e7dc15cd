"""A re-copy that does not match the first copy: keep both, overwrite nothing, hold it.

agent.ingest.copyjob calls `commit_mismatch` when a recording that already had a SHA-256
(agent.ledger.recopy.previous_hash) is copied again and the new bytes hash differently. In
one transaction:

- the ledger row gets its recorded SHA-256 back (the first copy's, from custody): the new
  hash never replaces it;
- the new bytes are moved from the normal spool name to
  ``<spool>/.recopied/<recording id>-<first 16 hex of the new SHA-256><ext>`` (a name the
  agent owns; a dot folder, so the spool sweep never moves it; never overwritten: a counter is
  added if the name exists);
- the recording is `quarantined` with its reason, so it is never archived and the wipe gate
  never releases the recorder's file (agent.retention.wipegate also asks
  agent.ledger.recopy, so not even an `accept` can release it);
- one `integrity.violation` (where `recorder`, reason `recopy_mismatch`) names both hashes.

`status` and `verify` list the kept files and the violation (`kept`, agent.ledger.recopy).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from agent.core.safefs import display
from agent.ledger import integrity
from agent.ledger import recopy as recopied
from agent.ledger import recordings as rec
from agent.station.context import Context

logger = logging.getLogger(__name__)

FOLDER = ".recopied"


def kept_path(spool: Path, rid: str, dest: Path, sha256: str) -> Path:
    """A free name in ``<spool>/.recopied/`` for the re-copied bytes of `rid` (created)."""
    folder = spool / FOLDER
    folder.mkdir(exist_ok=True, mode=0o750)
    ext = dest.name[len(rid) :] if dest.name.startswith(rid) else ""
    target, n = folder / f"{rid}-{sha256[:16]}{ext}", 0
    while os.path.lexists(target):
        n += 1
        target = folder / f"{rid}-{sha256[:16]}-{n}{ext}"
    return target


def commit_mismatch(
    ctx: Context,
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    dest: Path,
    recorded: str,
    copied: dict[str, Any],
) -> str:
    """Record the mismatch on the caller's transaction and move the new bytes aside (inside
    it: a failed rename rolls the record back). Returns the kept file relative to the spool."""
    rid, serial = str(row["id"]), str(row["serial"])
    target = kept_path(ctx.spool, rid, dest, copied["sha256"])
    kept = display(os.fsencode(target.relative_to(ctx.spool)))
    reason = (
        f"re-copy from recorder {serial} has SHA-256 {copied['sha256']}, not the recorded "
        f"{recorded}; new bytes kept as {kept}; the recorder's file is kept"
    )
    rec.transition(conn, rid, "quarantined", fields={"sha256": recorded, "reason": reason})
    integrity.report_violation(
        conn,
        rid,
        "recorder",
        {
            "check": recopied.CHECK,
            "reason": "re-copy differs from the first copy",
            "recorded_sha256": recorded,
            "recopied_sha256": copied["sha256"],
            "size": int(row["size"]),
            "source": row["source_path"],
            "serial": serial,
            "kept_as": kept,
            **({"encrypted": {"key": copied["key_id"]}} if copied.get("key_id") else {}),
        },
        reason="recopy_mismatch",
        recorded_sha256=recorded,
        recopied_sha256=copied["sha256"],
    )
    os.rename(dest, target)
    _fsync_dir(target.parent)
    doc = {"recorded_sha256": recorded, "recopied_sha256": copied["sha256"], "kept_as": kept}
    logger.error("%s", recopied.describe(rid, doc))
    return kept


def kept(ctx: Context) -> list[str]:
    """The re-copied files kept so far, relative to the spool (for `status` and `verify`)."""
    folder = ctx.spool / FOLDER
    if not folder.is_dir():
        return []
    return sorted(display(os.fsencode(p.relative_to(ctx.spool))) for p in folder.iterdir())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
