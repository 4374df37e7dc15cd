"""The local directory archive (`file:///...`): write-once, hash-named, read-only files.

The embedded default. It is off-station only when `archive.off_station = true` (a NAS mount),
and only then may it open the wipe gate. Documents (sidecars, case index entries, custody
anchors) are kept as numbered, read-only versions under `_docs/`, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlparse

from agent.archive.store import LockSpec, ObjectSpec, Stored
from agent.core import crashpoint, envelope, sealedio
from agent.core.errors import (
    AgentError,
    AnchorConflictError,
    IntegrityError,
    SpoolIntegrityError,
)
from agent.core.safefs import fsync_dir
from agent.ledger.paths import LOCAL_REF_PREFIX, safe_join


class LocalArchive:
    scheme = "file"

    def __init__(self, url: str, off_station: bool) -> None:
        parsed = urlparse(url)
        self.root = Path(parsed.path)
        self.off_station = off_station
        # Opens encrypted copies (docs/security.md): they are archived as they are, envelope
        # and all, and read back as plaintext through it.
        self.keys: envelope.Keyring | None = None

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def ref(self, sha256: str) -> str:
        # Relative to the archive root, so a moved or restored data dir still finds it.
        return f"{LOCAL_REF_PREFIX}{sha256[:2]}/{sha256}"

    def _path(self, ref: str) -> Path:
        if not ref.startswith("file://"):
            if not ref.startswith(LOCAL_REF_PREFIX):
                raise IntegrityError(
                    f"archive ref {ref} is outside the archive {self.root}: not a local reference"
                )
            try:
                return safe_join(self.root, ref[len(LOCAL_REF_PREFIX) :])
            except AgentError as exc:
                raise IntegrityError(f"archive ref {ref}: {exc}") from exc
        # An absolute ref from before migration 0008 (kept because it was outside the root),
        # resolved first: `..` segments and symlinks are judged by where they lead.
        path = Path(os.path.realpath(urlparse(ref).path))
        if Path(os.path.realpath(self.root)) not in path.parents:
            raise IntegrityError(f"archive ref {ref} is outside the archive {self.root}")
        return path

    def put(self, src: Path, spec: ObjectSpec) -> Stored:
        """Store `src` under its hash; idempotent; refused if `src` no longer matches."""
        sha256, size = spec.sha256, spec.size
        dest = self.path_for(sha256)
        key = f"{sha256[:2]}/{sha256}"
        if dest.exists():
            self.check(self.ref(sha256), sha256, size)
            return Stored(self.ref(sha256), key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{sha256}.partial"
        # A partial left by a crash is already 0444: reopening it for writing would fail for
        # the unprivileged service user and wedge the archive, so start from a fresh file.
        tmp.unlink(missing_ok=True)
        h = hashlib.sha256()
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while data := fin.read(4 << 20):
                h.update(data)
                fout.write(data)
            fout.flush()
            os.fsync(fout.fileno())
        actual = _plain_sha(tmp, self.keys) if sealedio.is_sealed(tmp) else h.hexdigest()
        if actual != sha256:
            # The spool copy changed since ingest: it must not be archived as the evidence.
            tmp.unlink()
            raise SpoolIntegrityError(
                f"spool copy {src} of recording {spec.recording_id} no longer matches its "
                f"SHA-256 {sha256}"
            )
        os.chmod(tmp, 0o444)
        crashpoint.hit("archive.before_rename")
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
        self.check(self.ref(sha256), sha256, size)
        return Stored(self.ref(sha256), key)

    def check(self, ref: str, sha256: str, size: int) -> None:
        dest = self._path(ref)
        try:
            ok = sealedio.hash_plain(dest, self.keys, drop_cache_first=True) == (sha256, size)
        except OSError as exc:
            raise IntegrityError(f"archived object {dest} cannot be read: {exc}") from exc
        if not ok:
            raise IntegrityError(f"archived object {dest} does not match SHA-256 {sha256}")

    def file_of(self, ref: str) -> Path:
        """The file behind `ref` (an encrypted one is read through agent.core.sealedio)."""
        return self._path(ref)

    @contextmanager
    def open_read(self, ref: str) -> Iterator[BinaryIO]:
        with sealedio.PlainReader(self._path(ref), self.keys) as f:
            yield cast(BinaryIO, f)

    def put_bytes(self, relkey: str, data: bytes, lock: LockSpec, content_type: str) -> str:
        folder = self.root / "_docs" / relkey
        folder.mkdir(parents=True, exist_ok=True)
        n = 1 + sum(1 for p in folder.iterdir() if p.name.startswith("v"))
        dest = folder / f"v{n:06d}{Path(relkey).suffix}"
        tmp = folder / f".v{n:06d}.partial"
        tmp.unlink(missing_ok=True)  # a crash's read-only leftover (see put)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o444)
        os.rename(tmp, dest)
        fsync_dir(folder)
        return f"file://{dest}"

    def put_document(self, relkey: str, doc: dict[str, Any], lock: LockSpec) -> str:
        body = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
        return self.put_bytes(relkey, body, lock, "application/json")

    def put_once(self, relkey: str, data: bytes, lock: LockSpec, content_type: str) -> str:
        """Version 1 only, never replaced: the whole file appears at once through link(),
        which fails if the name exists (O_EXCL semantics without a half-written anchor)."""
        folder = self.root / "_docs" / relkey
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"v{1:06d}{Path(relkey).suffix}"
        tmp = folder / f".once.{os.getpid()}.{hashlib.sha256(data).hexdigest()[:16]}.partial"
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, dest)
        except FileExistsError:
            versions = self.document_versions(relkey)
            if not versions or versions[0] != data:
                raise AnchorConflictError(
                    f"write-once document {dest} already exists with other content; "
                    "it is kept and this version is refused"
                ) from None
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(folder)
        return f"file://{dest}"

    def document_versions(self, relkey: str) -> list[bytes]:
        folder = self.root / "_docs" / relkey
        if not folder.is_dir():
            return []
        return [p.read_bytes() for p in sorted(folder.glob("v*")) if not p.is_symlink()]

    def list_documents(self, relprefix: str) -> list[str]:
        folder = self.root / "_docs" / relprefix
        if not folder.is_dir():
            return []
        return sorted(relprefix + p.name for p in folder.iterdir() if p.is_dir())

    def read_document(self, relkey: str) -> bytes | None:
        """The latest version of a document, or None."""
        folder = self.root / "_docs" / relkey
        versions = sorted(folder.glob("v*")) if folder.is_dir() else []
        return versions[-1].read_bytes() if versions else None

    def sidecar_relkey(self, stored_key: str, recording_id: str) -> str:
        return f"_sidecars/{recording_id}.meta.json"

    def apply_lock(self, ref: str, lock: LockSpec) -> None:
        """Files are read-only already; a directory has no legal hold to add."""

    def housekeep_store(self) -> int:
        return 0


def _plain_sha(path: Path, keys: envelope.Keyring | None) -> str:
    """The plaintext SHA-256 of an archived envelope; one that fails reads as no match."""
    try:
        return sealedio.hash_plain(path, keys)[0]
    except AgentError:
        return ""
