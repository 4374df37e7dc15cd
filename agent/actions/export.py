"""`evidence-agent export ID... --to DIR --reason TEXT --operator ID`: supervised retrieval.

Each recording is fetched from the spool copy when there is one that still matches, else from
the archive; its SHA-256 is verified while copying (a mismatch is refused, never exported). A
signed manifest (hashes, metadata, custody excerpt) goes next to the files, and every export
is a custody event naming the operator, the time and the reason (调阅监督).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agent.archive import keys as archive_keys
from agent.archive.store import Store, current_metadata, open_store
from agent.core import clock
from agent.core.errors import AgentError, ArchiveError, IntegrityError
from agent.core.safefs import fsync_dir
from agent.ledger import custody, events, stationkey
from agent.ledger import recordings as rec
from agent.station.context import Context

logger = logging.getLogger(__name__)

MANIFEST_SCHEMA = "evidence-agent/export/1"


class ExportError(AgentError):
    """An export could not be done as asked (bad arguments, unreadable or mismatching copy)."""


@dataclass
class Exported:
    recording_id: str
    file: str
    sha256: str
    size: int
    source: str  # spool | archive


@dataclass
class ExportResult:
    manifest: Path | None = None
    exported: list[Exported] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class Exporter:
    def __init__(self, ctx: Context, store: Store | None = None) -> None:
        self.ctx = ctx
        self._store = store

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.ctx)
        return self._store

    def run(self, refs: list[str], to: Path, reason: str, operator: str) -> ExportResult:
        if not reason.strip():
            raise ExportError("--reason must say why the recordings are retrieved (调阅事由)")
        if not operator.strip():
            raise ExportError("--operator must name who retrieves them")
        conn = self.ctx.ledger.connect()
        ids = list(dict.fromkeys(rec.resolve(conn, r) for r in refs))
        try:
            to.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create export directory {to}: {exc.strerror}") from exc
        result = ExportResult()
        for rid in ids:
            try:
                result.exported.append(self._one(rid, to))
            except (ExportError, ArchiveError, IntegrityError, OSError) as exc:
                logger.error("recording %s not exported: %s", rid, exc)
                result.failed.append((rid, str(exc)))
        if result.exported:
            self._record(result, to, reason, operator)
            result.manifest = self._manifest(result, to, reason, operator)
        return result

    # --- one file --------------------------------------------------------------------------

    def _one(self, rid: str, to: Path) -> Exported:
        row = rec.get(self.ctx.ledger.connect(), rid)
        assert row is not None
        if not row["sha256"]:
            raise ExportError(f"recording {rid} has not been copied yet (state {row['state']})")
        name = f"{rid}{archive_keys.extension(row['source_path'])}"
        dest = to / name
        if dest.exists():
            raise ExportError(f"{dest} already exists; export into an empty directory")
        source = "spool"
        spool = Path(row["spool_path"]) if row["spool_path"] else None
        if spool is not None and row["spool_removed_at"] is None and spool.exists():
            with open(spool, "rb") as f:
                ok = self._copy(f, dest, row["sha256"])
            if not ok:
                self._violation(rid, "spool", str(spool))
                source = "archive"
        else:
            source = "archive"
        if source == "archive":
            if not row["archive_ref"]:
                raise ExportError(f"recording {rid} has no usable spool copy and is not archived")
            with self.store.open_read(row["archive_ref"]) as f:
                if not self._copy(f, dest, row["sha256"]):
                    self._violation(rid, "archive", row["archive_ref"])
                    raise IntegrityError(
                        f"archived copy {row['archive_ref']} of {rid} does not match its SHA-256"
                    )
        return Exported(rid, name, row["sha256"], int(row["size"]), source)

    @staticmethod
    def _copy(src: IO[bytes], dest: Path, sha256: str) -> bool:
        """Copy to `dest` via a temp name, hashing; keep it only if the hash matches."""
        tmp = dest.with_name(f".{dest.name}.partial")
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            while data := src.read(4 << 20):
                h.update(data)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != sha256:
            tmp.unlink()
            return False
        os.chmod(tmp, 0o444)
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
        return True

    def _violation(self, rid: str, where: str, path: str) -> None:
        logger.error("recording %s: %s copy %s does not match its SHA-256", rid, where, path)
        with self.ctx.ledger.tx() as conn:
            custody.append(
                conn, "integrity.violation", {"where": where, "path": path}, recording_id=rid
            )
            events.emit(conn, "integrity.violation", recording=rid, where=where)

    # --- custody and manifest --------------------------------------------------------------

    def _record(self, result: ExportResult, to: Path, reason: str, operator: str) -> None:
        with self.ctx.ledger.tx() as conn:
            for e in result.exported:
                custody.append(
                    conn,
                    "recording.exported",
                    {
                        "operator": operator,
                        "reason": reason,
                        "to": str(to.resolve()),
                        "file": e.file,
                        "source": e.source,
                        "sha256": e.sha256,
                    },
                    recording_id=e.recording_id,
                    actor=operator,
                )
            events.emit(
                conn,
                "recording.exported",
                recordings=[e.recording_id for e in result.exported],
                operator=operator,
            )
            custody.checkpoint(conn, self.ctx.key, self.ctx.station_id)

    def _manifest(self, result: ExportResult, to: Path, reason: str, operator: str) -> Path:
        conn = self.ctx.ledger.connect()
        items = [self._item(conn, e) for e in result.exported]
        body: dict[str, Any] = {
            "schema": MANIFEST_SCHEMA,
            "station": self.ctx.station_id,
            "operator": operator,
            "reason": reason,
            "exported_at": clock.iso(clock.now()),
            "hash_alg": "sha256",
            "recordings": items,
            "checkpoint": custody.latest_checkpoint(conn),
        }
        key = self.ctx.key
        body["key_fingerprint"] = stationkey.fingerprint(key.public_key())
        body["signature"] = key.sign(custody.canonical(body).encode("utf-8")).hex()
        stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        path = to / f"manifest-{stamp}.json"
        with _atomic(path) as f:
            f.write(json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8"))
        return path

    def _item(self, conn: sqlite3.Connection, e: Exported) -> dict[str, Any]:
        row = rec.get(conn, e.recording_id)
        assert row is not None
        meta, version = current_metadata(conn, e.recording_id)
        excerpt = [
            {
                "seq": c["seq"],
                "at": c["at"],
                "type": c["type"],
                "actor": c["actor"],
                "payload": json.loads(c["payload"]),
                "hash": c["hash"],
            }
            for c in conn.execute(
                "SELECT * FROM custody WHERE recording_id=? ORDER BY seq", (e.recording_id,)
            )
        ]
        return {
            "id": e.recording_id,
            "file": e.file,
            "sha256": e.sha256,
            "size": e.size,
            "source": e.source,
            "archive_ref": row["archive_ref"],
            "serial": row["serial"],
            "officer": row["officer_id"],
            "unit": row["unit_id"],
            "source_path": row["source_path"],
            "start": row["start"],
            "end": row["end"],
            "metadata": meta,
            "metadata_version": version,
            "custody": excerpt,
        }


@contextmanager
def _atomic(path: Path) -> Iterator[IO[bytes]]:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    fsync_dir(path.parent)
