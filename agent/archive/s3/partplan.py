"""Planning a multipart upload: the parts of a spool copy, their SHA-256 digests, and the
composite checksum S3 reports for them.

One read of the file yields both the whole-file SHA-256 (checked against the ledger before
anything leaves the station) and every part's digest (sent with the part, so the store
rejects bytes that changed since).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.archive.store import LockSpec, ObjectSpec
from agent.core import envelope, sealedio
from agent.core.errors import SpoolIntegrityError, SpoolReadError

MIB = 1 << 20
MAX_PARTS = 10_000
_READ = 4 * MIB


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int
    digest: bytes  # raw SHA-256 of the part

    @property
    def checksum(self) -> str:
        return b64(self.digest)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def choose_part_size(size: int, configured: int) -> int:
    """The configured size, raised (to whole MiB) so no object needs more than 10000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(configured, -(-needed // MIB) * MIB)


def composite(parts: list[Part]) -> str:
    """S3's COMPOSITE SHA-256 of a multipart object: hash of the part hashes, then -N."""
    return b64(hashlib.sha256(b"".join(p.digest for p in parts)).digest()) + f"-{len(parts)}"


def plan(
    src: Path,
    size: int,
    part_size: int,
    keys: envelope.Keyring | None = None,
    open_body: Callable[[], Any] | None = None,
) -> tuple[str, list[Part]]:
    """One read of the spool copy: its SHA-256 and the digest of every part.

    The two digests of each block are computed on two cores at once (hashlib releases the
    GIL), so planning costs one hash pass of wall time, not two. Part checksums come from the
    same read as the whole-file hash: if the file changes before a part is sent, the store
    rejects that part. `open_body` reads other bytes than the plaintext (archive.encryption =
    "client": the envelope, agent.archive.s3.sealed).
    """
    whole = hashlib.sha256()
    parts: list[Part] = []
    offset = 0
    try:
        with (
            # The plaintext, through the envelope if the spool copy is encrypted.
            open_body() if open_body else sealedio.PlainReader(src, keys) as f,
            ThreadPoolExecutor(1, thread_name_prefix="plan") as pool,
        ):
            while offset < size or not parts:
                n = min(part_size, size - offset)
                h, got = hashlib.sha256(), 0
                while got < n:
                    data = f.read(min(_READ, n - got))
                    if not data:
                        break
                    pending = pool.submit(h.update, data)
                    whole.update(data)
                    pending.result()
                    got += len(data)
                parts.append(Part(len(parts) + 1, offset, got, h.digest()))
                offset += got
                if got < n or n == 0:
                    break
            extra = f.read(1)
    except OSError as exc:
        raise SpoolReadError(
            f"cannot read spool copy {src}: {exc.strerror or exc} (errno {exc.errno}); "
            "the recording stays queued and is retried"
        ) from exc
    if offset != size or extra:
        raise SpoolIntegrityError(
            f"spool copy {src} is no longer {size} bytes long; it was changed after ingest"
        )
    return whole.hexdigest(), parts


def lock_kwargs(lock: LockSpec) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if lock.mode and lock.retain_until:
        kw["ObjectLockMode"] = lock.mode
        kw["ObjectLockRetainUntilDate"] = lock.retain_until
    if lock.legal_hold:
        kw["ObjectLockLegalHoldStatus"] = "ON"
    return kw


def pread_part(fd: Any, src: Path, p: Part) -> bytes:
    chunks, got = [], 0
    try:
        while got < p.size:
            data = fd.pread(p.size - got, p.offset + got)
            if not data:
                break
            chunks.append(data)
            got += len(data)
    except OSError as exc:
        raise SpoolReadError(
            f"cannot read spool copy {src} (part {p.number}): {exc.strerror} (errno {exc.errno})"
        ) from exc
    if got != p.size:
        raise SpoolIntegrityError(f"spool copy {src} became shorter while it was uploaded")
    return b"".join(chunks)


def read_small(src: Path, spec: ObjectSpec, keys: envelope.Keyring | None) -> bytes:
    """Read a small spool copy once (its plaintext, through the envelope if it is encrypted):
    the same bytes are checked and then sent."""
    try:
        with sealedio.PlainReader(src, keys) as f:
            data = f.read()
    except OSError as exc:
        raise SpoolReadError(
            f"cannot read spool copy {src}: {exc.strerror or exc} (errno {exc.errno}); "
            "the recording stays queued and is retried"
        ) from exc
    if len(data) != spec.size or hashlib.sha256(data).hexdigest() != spec.sha256:
        raise SpoolIntegrityError(
            f"spool copy {src} of recording {spec.recording_id} no longer matches its "
            f"SHA-256 {spec.sha256}; it is not archived"
        )
    return data
