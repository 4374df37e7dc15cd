"""`evidence-agent export ID... --to DIR --reason TEXT --operator ID`: supervised retrieval.

Each recording is fetched from the spool copy when there is one that still matches, else from
the archive; its SHA-256 is verified while copying (a mismatch is refused, never exported). A
signed manifest (hashes, metadata, custody excerpt) and a `SHA256SUMS` file go next to the
files, and every export is a custody event naming the operator, the time and the reason
(调阅监督): `export.started` before the first byte is written, then `recording.exported` per
file, or `export.aborted` on an error or SIGTERM/SIGINT (a SIGKILL leaves `export.started`
alone, which shows the export as unfinished). Writes go through agent.actions.safeexport:
relative to a directory fd, never through a symlink, never over an existing file, owner-only.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from agent.actions import sm2manifest
from agent.actions.safeexport import ExportDir, ExportTargetError, signals_abort, write_manifest
from agent.archive.store import Store
from agent.archive.stores import open_store
from agent.core import clock, crashpoint, sealedio
from agent.core.errors import AgentError, ArchiveError, EnvelopeError, IntegrityError
from agent.ledger import custody, integrity, stationkey
from agent.ledger import exported as exported_event
from agent.ledger import paths as stationpaths
from agent.ledger import recordings as rec
from agent.rules import archive_keys
from agent.station.context import Context
from agent.tagging import metadata as md
from agent.tagging.context_fields import public

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
        target = ExportDir(to)
        try:
            with signals_abort():
                return self._run(ids, target, reason, operator)
        finally:
            target.close()

    def _run(self, ids: list[str], target: ExportDir, reason: str, operator: str) -> ExportResult:
        export_id = uuid.uuid4().hex
        self._started(export_id, ids, target.path, reason, operator)
        result = ExportResult()
        try:
            for rid in ids:
                try:
                    result.exported.append(self._one(rid, target))
                except (ExportError, ArchiveError, IntegrityError, OSError) as exc:
                    logger.error("recording %s not exported: %s", rid, exc)
                    result.failed.append((rid, str(exc)))
            if result.exported:
                self._record(result, target.path, reason, operator, export_id)
        except BaseException as exc:
            done = {e.recording_id for e in result.exported}
            self.record_aborted(export_id, [r for r in ids if r not in done], operator, repr(exc))
            raise
        if result.failed:
            self.record_aborted(export_id, [r for r, _ in result.failed], operator, "failed")
        if result.exported:
            result.manifest = self._manifest(result, target, reason, operator)
        return result

    # --- one file --------------------------------------------------------------------------

    def _one(self, rid: str, to: ExportDir) -> Exported:
        row = rec.get(self.ctx.ledger.connect(), rid)
        assert row is not None
        if not row["sha256"]:
            raise ExportError(f"recording {rid} has not been copied yet (state {row['state']})")
        name = f"{rid}{archive_keys.extension(row['source_path'])}"
        dest = name
        if to.exists(name):
            raise ExportError(f"{to.path / name} already exists; export into an empty directory")
        source = "spool"
        spool = stationpaths.spool_file(self.ctx.cfg, row["spool_path"])
        if spool is not None and row["spool_removed_at"] is None and spool.exists():
            try:  # the plaintext, through the envelope when the copy is encrypted
                with sealedio.PlainReader(spool, self.ctx.keyring) as f:
                    ok = self._copy(cast(IO[bytes], f), to, dest, row["sha256"])
            except EnvelopeError as exc:
                logger.error("recording %s: %s", rid, exc)
                ok = False
            if not ok:
                self._violation(rid, "spool", str(spool))
                source = "archive"
        else:
            source = "archive"
        if source == "archive":
            if not row["archive_ref"]:
                raise ExportError(f"recording {rid} has no usable spool copy and is not archived")
            with self.store.open_read(row["archive_ref"]) as f:
                if not self._copy(f, to, dest, row["sha256"]):
                    self._violation(rid, "archive", row["archive_ref"])
                    raise IntegrityError(
                        f"archived copy {row['archive_ref']} of {rid} does not match its SHA-256"
                    )
        return Exported(rid, name, row["sha256"], int(row["size"]), source)

    @staticmethod
    def _copy(src: IO[bytes], to: ExportDir, name: str, sha256: str) -> bool:
        """Copy to `name` in the target, hashing; the name appears only if the hash matches."""
        try:
            actual = to.write_verified(name, src, sha256)
        except ExportTargetError as exc:
            raise ExportError(str(exc)) from exc
        crashpoint.hit("export.after_file")
        return actual == sha256

    def _violation(self, rid: str, where: str, path: str) -> None:
        logger.error("recording %s: %s copy %s does not match its SHA-256", rid, where, path)
        with self.ctx.ledger.tx() as conn:
            integrity.report_violation(conn, rid, where, {"path": path})

    # --- custody and manifest --------------------------------------------------------------

    def _started(
        self, export_id: str, ids: list[str], to: Path, reason: str, operator: str
    ) -> None:
        with self.ctx.ledger.tx() as conn:
            for rid in ids:
                custody.append(
                    conn,
                    "export.started",
                    {
                        "export": export_id,
                        "operator": operator,
                        "reason": reason,
                        "to": str(to.resolve()),
                    },  # fmt: skip
                    recording_id=rid,
                    actor=operator,
                )
        crashpoint.hit("export.after_started")

    def record_aborted(self, export_id: str, ids: list[str], operator: str, why: str) -> None:
        """`export.aborted` for what was started and not exported (also the gate's path)."""
        if not ids:
            return
        with self.ctx.ledger.tx() as conn:
            for rid in ids:
                custody.append(
                    conn,
                    "export.aborted",
                    {"export": export_id, "operator": operator, "reason": why},
                    recording_id=rid,
                    actor=operator,
                )

    def _record(
        self, result: ExportResult, to: Path, reason: str, operator: str, export_id: str
    ) -> None:
        with self.ctx.ledger.tx() as conn:
            files = [
                (
                    e.recording_id,
                    {
                        "export": export_id,
                        "operator": operator,
                        "reason": reason,
                        "to": str(to.resolve()),
                        "file": e.file,
                        "source": e.source,
                        "sha256": e.sha256,
                    },
                )
                for e in result.exported
            ]
            exported_event.record_exported(conn, files, operator)
            custody.checkpoint(conn, self.ctx.key, self.ctx.station_id, self.ctx.sm2)

    def _manifest(self, result: ExportResult, to: ExportDir, reason: str, operator: str) -> Path:
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
        sm2manifest.sign(self.ctx, body)  # crypto.suite = "sm"
        body["signature"] = key.sign(custody.canonical(body).encode("utf-8")).hex()
        stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        try:
            return write_manifest(to, stamp, body, [(e.sha256, e.file) for e in result.exported])
        except ExportTargetError as exc:
            raise ExportError(str(exc)) from exc

    def _item(self, conn: sqlite3.Connection, e: Exported) -> dict[str, Any]:
        row = rec.get(conn, e.recording_id)
        assert row is not None
        version, meta = md.stored(conn, e.recording_id)
        excerpt = [
            {
                "seq": c["seq"],
                "at": c["at"],
                "type": c["type"],
                "actor": c["actor"],
                "payload": json.loads(c["payload"]),
                "hash": c["hash"],
                **({"sm3": c["sm3"]} if c["sm3"] else {}),  # the SM3 chain (crypto.suite "sm")
            }
            for c in conn.execute(
                "SELECT * FROM custody WHERE recording_id=? ORDER BY seq", (e.recording_id,)
            )
        ]
        return {
            "id": e.recording_id,
            "file": e.file,
            "sha256": e.sha256,
            **({"sm3": row["sm3"]} if row["sm3"] else {}),  # crypto.suite = "sm"
            "size": e.size,
            "source": e.source,
            "archive_ref": row["archive_ref"],
            "serial": row["serial"],
            "officer": row["officer_id"],
            "unit": row["unit_id"],
            "source_path": row["source_path"],
            **rec.effective_times(row),
            "metadata": public(meta),  # the party (执法对象) stays in the ledger
            "metadata_version": version,
            "custody": excerpt,
        }
