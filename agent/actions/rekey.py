"""Re-wrapping the data keys of every encrypted copy: `keys encryption rotate` and `recover`.

Only the envelope header (the wrapped data key) is rewritten; the chunks are copied byte for
byte, never decrypted and re-encrypted, so the ciphertext bodies stay what ingest wrote. Each
copy is replaced as a copy is made durable: temp file → fsync → rename → fsync dir. The ledger
row (`spool_key_id`) and the custody event are committed together at the end; a run cut off
part-way is finished by running the command again (the key file keeps the old key until then).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.core import envelope, sealedio
from agent.core.errors import AgentError
from agent.core.safefs import fsync_dir
from agent.ledger import custody
from agent.ledger import paths as stationpaths
from agent.ledger import recordings as rec
from agent.station.context import Context


@dataclass
class RekeyResult:
    rewrapped: list[str] = field(default_factory=list)  # recording ids
    plaintext: list[str] = field(default_factory=list)  # copies still in plaintext
    failed: list[tuple[str, str]] = field(default_factory=list)  # (recording id, why)
    archive_objects: int = 0
    segments: int = 0  # sealed interview segments in their volumes (agent.interview.sealseg)


def rewrite_header(path: Path, header: bytes) -> None:
    """Replace `path` by the same body under a new header, durably (mode kept)."""
    mode = os.stat(path).st_mode & 0o777
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.rekey"
    src = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(out, header)
            _copy_body(src, out, envelope.HEADER_SIZE, os.fstat(src).st_size)
            os.fsync(out)
            os.fchmod(out, mode)
        finally:
            os.close(out)
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(src)
    fsync_dir(path.parent)


def _copy_body(src: int, out: int, offset: int, size: int) -> None:
    """The ciphertext from `offset` on, byte for byte (in the kernel where it can)."""
    while offset < size:
        try:
            n = os.copy_file_range(src, out, size - offset, offset)
        except OSError:  # a file system without it: plain reads and writes
            data = os.pread(src, min(4 << 20, size - offset), offset)
            n = len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
        if n == 0:
            raise OSError(f"ciphertext ended early at byte {offset} of {size}")
        offset += n


def _rewrap_one(path: Path, opener: envelope.Keyring, to: envelope.Recipients) -> bool:
    """True if `path` was re-wrapped, False if it is a plaintext copy."""
    if not sealedio.is_sealed(path):
        return False
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        header = envelope.rewrapped_header(fd, opener, to, str(path))
    finally:
        os.close(fd)
    rewrite_header(path, header)
    return True


def rewrap_all(ctx: Context, opener: envelope.Keyring, to: envelope.Recipients) -> RekeyResult:
    """Wrap the data key of every encrypted spool copy and local archive object for `to`."""
    result = RekeyResult()
    rows = ctx.ledger.query(
        "SELECT id, sha256, spool_path, spool_removed_at, archive_ref FROM recordings"
        " WHERE sha256 IS NOT NULL ORDER BY id"
    )
    archive_root = _local_archive(ctx)
    for r in rows:
        rid = str(r["id"])
        try:
            spool = stationpaths.spool_file(ctx.cfg, r["spool_path"])
            if spool is not None and r["spool_removed_at"] is None and spool.exists():
                (result.rewrapped if _rewrap_one(spool, opener, to) else result.plaintext).append(
                    rid
                )
            if archive_root is not None and r["archive_ref"]:
                obj = archive_root / r["sha256"][:2] / r["sha256"]
                if obj.exists() and _rewrap_one(obj, opener, to):
                    result.archive_objects += 1
        except (AgentError, OSError) as exc:
            result.failed.append((rid, str(exc)))
    _rewrap_segments(ctx, opener, to, result)
    return result


def _rewrap_segments(
    ctx: Context, opener: envelope.Keyring, to: envelope.Recipients, result: RekeyResult
) -> None:
    """Sealed interview segments still in their camera's volume (ingest may not have read them
    yet, and the volume keeps them until release)."""
    for r in ctx.ledger.query("SELECT id, volume, path FROM interview_segments ORDER BY id"):
        path = Path(r["volume"]) / r["path"]
        try:
            if not path.exists():
                continue
            st = path.stat()
            if _rewrap_one(path, opener, to):
                # Same size and mtime: ingest and the wipe gate know the source by them.
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
                result.segments += 1
        except (AgentError, OSError) as exc:
            result.failed.append((f"interview segment {path}", str(exc)))


def _local_archive(ctx: Context) -> Path | None:
    url = ctx.cfg.archive_url
    if not url.startswith("file://"):
        return None
    from urllib.parse import urlparse

    return Path(urlparse(url).path)


def commit(
    ctx: Context,
    result: RekeyResult,
    event: str,
    payload: Mapping[str, object],
    actor: str,
    archive_slots: Mapping[str, str] | None = None,
) -> int:
    """Record the new key of every re-wrapped copy and the custody event, in one transaction
    (with the slots re-wrapped for S3 objects that cannot be rewritten, agent.archive.s3.rekey)."""
    kid = payload.get("key")
    with ctx.ledger.tx() as conn:
        rec.set_spool_key(conn, list(result.rewrapped), kid)
        for k, v in (archive_slots or {}).items():
            ctx.ledger.set_kv(conn, k, v)
        body = {
            **payload,
            "rewrapped": len(result.rewrapped),
            "archive_objects": result.archive_objects,
            "interview_segments": result.segments,
            "plaintext": len(result.plaintext),
            "failed": [rid for rid, _ in result.failed],
        }
        return custody.append(conn, event, body, actor=actor)
