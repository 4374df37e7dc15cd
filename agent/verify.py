"""`evidence-agent verify`: re-hash every copy, walk the custody chain, check signatures,
and check the metadata versions against their custody events.

Exits non-zero on any mismatch and says which recording, file or event is wrong.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent import custody, metadata, stationkey
from agent.context import Context
from agent.copier import hash_file


@dataclass
class Problem:
    kind: str  # copy, missing, custody, metadata, checkpoint, key
    subject: str
    message: str


@dataclass
class VerifyReport:
    recordings_checked: int = 0
    bytes_checked: int = 0
    custody_events: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def run(ctx: Context, progress: Any = None) -> VerifyReport:
    report = VerifyReport()
    rows = ctx.ledger.query(
        "SELECT id, sha256, size, spool_path, archive_ref, state FROM recordings"
        " WHERE sha256 IS NOT NULL"
    )
    for r in rows:
        path = Path(r["spool_path"]) if r["spool_path"] else None
        if path is None or not path.exists():
            path = _archived_path(r["archive_ref"], r["sha256"])
        if path is None or not path.exists():
            report.problems.append(
                Problem("missing", r["id"], f"no copy found (spool {r['spool_path']})")
            )
            continue
        actual = hash_file(path)
        report.recordings_checked += 1
        report.bytes_checked += os.path.getsize(path)
        if actual != r["sha256"]:
            report.problems.append(
                Problem(
                    "copy",
                    r["id"],
                    f"{path}: SHA-256 {actual} does not match the ledger's "
                    f"{r['sha256']} (the copy was altered or damaged)",
                )
            )
        if progress:
            progress(r["id"])
    conn = ctx.ledger.connect()
    n, chain = custody.verify_chain(conn)
    report.custody_events = n
    report.problems += [Problem("custody", f"event {p.seq}", p.message) for p in chain]
    report.problems += [
        Problem("metadata", rid, msg) for rid, msg in metadata.verify_versions(conn)
    ]
    pub = stationkey.load_public(ctx.cfg.keys_dir)
    report.checkpoints = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    if pub is None:
        if report.checkpoints:
            report.problems.append(
                Problem("key", str(ctx.cfg.keys_dir), "station public key is missing")
            )
    else:
        report.problems += [
            Problem("checkpoint", f"event {p.seq}", p.message)
            for p in custody.verify_checkpoints(conn, pub)
        ]
    return report


def _archived_path(ref: str | None, sha: str) -> Path | None:
    if ref and ref.startswith("file://"):
        return Path(ref[len("file://") :])
    return None
