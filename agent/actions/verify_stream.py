"""Full `verify` over a ledger of any size: copies read in batches, progress as it goes.

A station's ledger grows to a million recordings; `verify` re-hashes each copy, which takes
hours, so it must neither hold every row in memory nor one read transaction open for the
whole run (an open reader stops WAL checkpoints, and the daemon keeps writing). Rows come in
keyset-paged batches by id, each batch its own short read. Progress goes to a callback per
recording (the CLI's rich bar on a terminal) and, when nothing draws a bar, to a log line
every `LOG_EVERY_SECONDS`, so a run under systemd or cron still shows how far it is.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)

BATCH = 1000
LOG_EVERY_SECONDS = 30.0
COLUMNS = "id, sha256, size, spool_path, spool_removed_at, archive_ref, state"


def hashed_recordings(
    conn: sqlite3.Connection, only: set[str] | None = None, batch: int = BATCH
) -> Iterator[sqlite3.Row]:
    """Every recording with a hash (or those of them in `only`), in id order, `batch` rows
    per read."""
    if only is not None:
        ids = sorted(only)
        for i in range(0, len(ids), batch):
            chunk = ids[i : i + batch]
            marks = ",".join("?" * len(chunk))
            yield from conn.execute(
                f"SELECT {COLUMNS} FROM recordings WHERE sha256 IS NOT NULL AND id IN ({marks})"
                " ORDER BY id",
                chunk,
            ).fetchall()
        return
    last = ""
    while True:
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM recordings WHERE sha256 IS NOT NULL AND id > ?"
            " ORDER BY id LIMIT ?",
            (last, batch),
        ).fetchall()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]["id"]


def count_hashed(conn: sqlite3.Connection) -> int:
    return int(
        conn.execute("SELECT COUNT(*) FROM recordings WHERE sha256 IS NOT NULL").fetchone()[0]
    )


class ProgressLog:
    """A log line every `every` seconds: recordings and bytes done of the total."""

    def __init__(self, total: int, every: float = LOG_EVERY_SECONDS) -> None:
        self.total, self.every = total, every
        self.done = 0
        self.bytes = 0
        self.t0 = self.last = time.monotonic()

    def __call__(self, size: int) -> None:
        self.done += 1
        self.bytes += size
        now = time.monotonic()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            pct = 100.0 * self.done / self.total if self.total else 100.0
            rate = self.bytes / max(now - self.t0, 1e-9) / 1e6
            logger.info(
                "verify: %d of %d copies re-hashed (%.0f%%), %.1f GB, %.0f MB/s",
                self.done,
                self.total,
                pct,
                self.bytes / 1e9,
                rate,
            )


Progress = Callable[[str], None]
