"""`evidence-agent verify`: re-hash every copy, walk the custody chain, check signatures,
and check the metadata versions against their custody events.

Exits non-zero on any mismatch and says which recording, file or event is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.archive import keys as archive_keys
from agent.core.copier import hash_file
from agent.core.errors import AgentError
from agent.ledger import custody, stationkey
from agent.station.context import Context
from agent.tagging import metadata


@dataclass
class Problem:
    kind: str  # copy, missing, archive, custody, metadata, checkpoint, key, anchor
    subject: str
    message: str


@dataclass
class VerifyReport:
    recordings_checked: int = 0
    bytes_checked: int = 0
    custody_events: int = 0
    checkpoints: int = 0
    anchors_checked: int = 0
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
        "SELECT id, sha256, size, spool_path, spool_removed_at, archive_ref, state"
        " FROM recordings WHERE sha256 IS NOT NULL"
    )
    archive = _ArchiveReader(ctx)
    for r in rows:
        _check_copy(r, archive, report)
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
        report.problems += _anchor_problems(ctx, archive, pub, report)
    return report


def _check_copy(r: Any, archive: _ArchiveReader, report: VerifyReport) -> None:
    """Re-hash the spool copy, or the archived one once housekeeping removed the spool copy."""
    path = Path(r["spool_path"]) if r["spool_path"] else None
    if path is not None and r["spool_removed_at"] is None and path.exists():
        where, actual, size = str(path), hash_file(path), os.path.getsize(path)
    elif r["archive_ref"]:
        if path is not None and r["spool_removed_at"] is None:
            report.problems.append(
                Problem("missing", r["id"], f"spool copy {path} vanished without a record")
            )
        where = r["archive_ref"]
        try:
            actual, size = archive.hash(r["archive_ref"])
        except (AgentError, OSError) as exc:
            report.problems.append(
                Problem("archive", r["id"], f"cannot read archived copy {where}: {exc}")
            )
            return
    else:
        report.problems.append(
            Problem("missing", r["id"], f"no copy found (spool {r['spool_path']})")
        )
        return
    report.recordings_checked += 1
    report.bytes_checked += size
    if actual != r["sha256"]:
        report.problems.append(
            Problem(
                "copy",
                r["id"],
                f"{where}: SHA-256 {actual} does not match the ledger's "
                f"{r['sha256']} (the copy was altered or damaged)",
            )
        )


def _anchor_problems(
    ctx: Context, archive: _ArchiveReader, pub: Any, report: VerifyReport
) -> list[Problem]:
    """The newest checkpoint shipped to the archive must match the local chain and key."""
    shipped = ctx.ledger.get_kv("archive.checkpoint_shipped")
    if not shipped:
        return []
    conn = ctx.ledger.connect()
    row = conn.execute("SELECT * FROM checkpoints WHERE seq = ?", (int(shipped),)).fetchone()
    station = ctx.station_id
    if row is None:
        return [Problem("anchor", f"checkpoint {shipped}", "shipped checkpoint is gone locally")]
    relkey = archive_keys.checkpoint_key("", station, int(row["head_seq"]))
    try:
        data = archive.document(relkey)
        key_pem = archive.document(
            archive_keys.pubkey_key("", station, stationkey.fingerprint(pub))
        )
    except (AgentError, OSError) as exc:
        return [Problem("anchor", relkey, f"cannot read the archived checkpoint: {exc}")]
    if data is None or key_pem is None:
        return [Problem("anchor", relkey, "checkpoint or station key missing in the archive")]
    doc = json.loads(data)
    problems = []
    if (doc.get("statement"), doc.get("signature")) != (row["statement"], row["signature"]):
        problems.append(
            Problem("anchor", relkey, "local checkpoint differs from its archived copy")
        )
    msg = custody.verify_checkpoint(conn, pub, doc.get("statement", ""), doc.get("signature", ""))
    if msg:
        problems.append(Problem("anchor", relkey, f"archived checkpoint: {msg}"))
    report.anchors_checked += 1
    return problems


class _ArchiveReader:
    """Opens the archive store only if some recording has to be checked there."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store: Any = None

    def _open(self) -> Any:
        if self.store is None:
            from agent.archive.store import open_store

            self.store = open_store(self.ctx)
        return self.store

    def document(self, relkey: str) -> bytes | None:
        return self._open().read_document(relkey)  # type: ignore[no-any-return]

    def hash(self, ref: str) -> tuple[str, int]:
        self._open()
        h, size = hashlib.sha256(), 0
        with self.store.open_read(ref) as f:
            while data := f.read(4 << 20):
                h.update(data)
                size += len(data)
        return h.hexdigest(), size
