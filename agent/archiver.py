"""Archive spooled recordings (earliest deadline first) and release them through the gate.

The archive store is chosen by `archive.url`: `file://` is the local directory archive; other
stores plug in through `open_store`. A recording becomes `archived` only after the store
confirmed the object and its checksum; release then goes through agent.wipegate.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Protocol

from agent import crashpoint, custody, events, wipegate
from agent import recordings as rec
from agent.config import AgentConfig
from agent.context import Context
from agent.copier import hash_file
from agent.errors import IntegrityError

logger = logging.getLogger(__name__)


class Store(Protocol):
    off_station: bool

    def put(self, src: Path, sha256: str, size: int) -> str: ...


def open_store(cfg: AgentConfig) -> Store:
    url = cfg.archive_url
    if url.startswith("file://"):
        from agent.archive_local import LocalArchive

        return LocalArchive(url, cfg.archive.off_station)
    raise NotImplementedError(f"archive.url {url}: only file:// stores are available")


class Archiver:
    def __init__(self, ctx: Context, store: Store | None = None) -> None:
        self.ctx = ctx
        self.store = store or open_store(ctx.cfg)

    def next_pending(self) -> sqlite3.Row | None:
        return self.ctx.ledger.one(
            "SELECT * FROM recordings WHERE state='spooled' ORDER BY priority DESC,"
            " deadline ASC, start ASC LIMIT 1"
        )

    def archive_one(self, row: sqlite3.Row) -> bool:
        rid, sha = str(row["id"]), str(row["sha256"])
        spool = Path(row["spool_path"])
        # Check the spool copy before it leaves: a bit flipped on the station's disk must not
        # be archived (and locked) as if it were the evidence.
        if hash_file(spool) != sha:
            msg = f"spool copy {spool} of recording {rid} no longer matches its SHA-256"
            with self.ctx.ledger.tx() as conn:
                custody.append(
                    conn,
                    "integrity.violation",
                    {"where": "spool", "path": str(spool)},
                    recording_id=rid,
                )
                events.emit(conn, "integrity.violation", recording=rid, where="spool")
            raise IntegrityError(msg)
        crashpoint.hit("archive.before_put")
        try:
            ref = self.store.put(spool, sha, int(row["size"]))
        except Exception as exc:
            with self.ctx.ledger.tx() as conn:
                events.emit(conn, "archive.failed", recording=rid, reason=str(exc)[:500])
            raise
        crashpoint.hit("archive.after_put")
        at = rec.now_iso()
        with self.ctx.ledger.tx() as conn:
            rec.set_state(
                conn, rid, "archived", archive_ref=ref, archive_verified_at=at, archived_at=at
            )
            custody.append(
                conn,
                "recording.archived",
                {"ref": ref, "sha256": sha, "off_station": self.store.off_station},
                recording_id=rid,
            )
            events.emit(conn, "archive.completed", recording=rid, ref=ref)
        return True

    def release_ready(self) -> int:
        """Erase from docked recorders whatever the gate allows; returns how many."""
        policy = self.ctx.cfg.ingest.release_after
        if policy == "never":
            return 0
        states = ("archived",) if policy == "archived" else ("spooled", "archived")
        rows = self.ctx.ledger.query(
            "SELECT r.id FROM recordings r JOIN devices d ON d.id = r.device_id WHERE d.docked=1"
            f" AND r.state IN ({','.join('?' * len(states))})",
            states,
        )
        n = 0
        for r in rows:
            if wipegate.release(self.ctx.cfg, self.ctx.ledger, r["id"]).allowed:
                n += 1
        return n
