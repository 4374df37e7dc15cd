"""The archive store interface, what it is told about a recording, and which lock it gets.

Two stores implement `Store`: agent.archive.local.LocalArchive (`file://`, the embedded
default) and agent.archive.s3.store.S3Archive (`s3://`); agent.archive.stores picks one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from agent.core import clock
from agent.ledger.recordings import effective_times
from agent.tagging import metadata as md
from agent.tagging.context_fields import public

if TYPE_CHECKING:
    from agent.config.loader import AgentConfig
    from agent.station.context import Context


@dataclass(frozen=True)
class LockSpec:
    """Object Lock to set on an object: mode + retain-until, and legal hold."""

    mode: str | None = None
    retain_until: datetime | None = None
    legal_hold: bool = False


@dataclass
class ObjectSpec:
    """Everything a store needs to place, lock and describe one recording."""

    recording_id: str
    sha256: str
    size: int
    source_path: str | None = None
    serial: str | None = None
    unit: str | None = None
    officer: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_version: int = 0
    lock: LockSpec = field(default_factory=LockSpec)


@dataclass(frozen=True)
class Stored:
    """What the store confirmed: the ref the ledger keeps, and the verified facts."""

    ref: str
    key: str
    bucket: str | None = None
    version_id: str | None = None
    checksum: str | None = None
    lock: LockSpec = field(default_factory=LockSpec)
    encryption: dict[str, Any] | None = None  # how an S3 object is kept confidential
    stored_size: int | None = None  # the object's size in the store, if not the plaintext's


class Store(Protocol):
    scheme: str
    off_station: bool

    def put(self, src: Path, spec: ObjectSpec) -> Stored:
        """Store `src`, refusing it if it no longer matches spec.sha256; verify; return."""
        ...

    def check(self, ref: str, sha256: str, size: int) -> None:
        """Raise unless the store verifiably holds `ref` with this hash, size and lock."""
        ...

    def open_read(self, ref: str) -> AbstractContextManager[BinaryIO]: ...

    def put_document(self, relkey: str, doc: dict[str, Any], lock: LockSpec) -> str:
        """Write a small JSON document (sidecar, case index, anchor) under the prefix."""
        ...

    def put_bytes(self, relkey: str, data: bytes, lock: LockSpec, content_type: str) -> str: ...

    def read_document(self, relkey: str) -> bytes | None:
        """The latest version of a document written with put_document/put_bytes, or None."""
        ...

    def put_once(self, relkey: str, data: bytes, lock: LockSpec, content_type: str) -> str:
        """Write-once (anchors): create `relkey` only if no version of it exists. The same
        bytes again are accepted (a retry); different bytes raise AnchorConflictError."""
        ...

    def document_versions(self, relkey: str) -> list[bytes]:
        """Every version of a document, oldest first (empty if there is none)."""
        ...

    def list_documents(self, relprefix: str) -> list[str]:
        """Relative keys of the documents under `relprefix` (a folder, ending in `/`)."""
        ...

    def sidecar_relkey(self, stored_key: str, recording_id: str) -> str: ...

    def apply_lock(self, ref: str, lock: LockSpec) -> None:
        """Add a legal hold / extend retention of a stored version (never shortens)."""
        ...

    def housekeep_store(self) -> int:
        """Store-side cleanup (abandoned multipart uploads); returns how many were cleaned."""
        ...


def lock_for(cfg: AgentConfig, metadata: dict[str, Any], now: datetime | None = None) -> LockSpec:
    """Retention for a recording with this metadata: per category, legal hold for cases."""
    a = cfg.archive
    if not a.object_lock:
        return LockSpec()
    rule = a.retention.categories.get(str(metadata.get("category") or ""), a.retention)
    until = (now or clock.now()) + timedelta(days=rule.days)
    # Whole seconds: S3 stores retain-until at second precision and compares at that grain.
    until = until.replace(microsecond=0) + timedelta(seconds=1)
    hold = a.retention.legal_hold_for_cases and bool(metadata.get("case_number"))
    return LockSpec(rule.mode, until, hold)


def spec_for(ctx: Context, row: sqlite3.Row) -> ObjectSpec:
    """Build the ObjectSpec of a recording row (joined with its device)."""
    conn = ctx.ledger.connect()
    version, metadata = md.stored(conn, str(row["id"]))
    keys = row.keys()
    times = effective_times(row)
    return ObjectSpec(
        recording_id=str(row["id"]),
        sha256=str(row["sha256"]),
        size=int(row["size"]),
        source_path=row["source_path"],
        serial=row["serial"] if "serial" in keys else None,
        unit=row["unit_id"],
        officer=row["officer_id"],
        # New uploads are keyed by the corrected start; objects already archived keep the
        # key stored in their archive_ref.
        start=clock.parse_iso(times["start"]) or clock.parse_iso(row["discovered_at"]),
        end=clock.parse_iso(times["end"]),
        metadata=public(metadata),  # the party (执法对象) never leaves the ledger
        metadata_version=version,
        lock=lock_for(ctx.cfg, metadata),
    )


def iter_file(f: BinaryIO, chunk: int = 4 << 20) -> Iterator[bytes]:
    while data := f.read(chunk):
        yield data
