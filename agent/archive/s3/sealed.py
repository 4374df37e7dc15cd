"""`archive.encryption = "client"`: the S3 archive receives the station's envelope, not plaintext.

The object is the spool copy's envelope (agent.core.envelope): its chunks byte for byte, under a
header whose data key is wrapped for the station's current key-encryption key and the agency's
recovery public key (`crypto.recovery_public_key`, required). When the spool header already
holds exactly those two slots it is sent as it is, so a resumed multipart upload finds the same
bytes; otherwise the header is re-wrapped (only part 1 then differs on a resume and is sent
again). Sizes, part checksums and ETags are of the ciphertext; the plaintext SHA-256 of the
spool copy is checked against the ledger before anything is sent, the object metadata carries
it, and a read-back (stores without checksums) decrypts and compares it. Object Lock is the
same as for plaintext objects.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.archive.s3.multipart import MultipartUploader
from agent.archive.s3.partplan import b64, choose_part_size, plan
from agent.archive.s3.verify import verify_object
from agent.archive.store import ObjectSpec, Stored
from agent.core import envelope, envstream, sealedio
from agent.core.errors import ArchiveError, SpoolIntegrityError
from agent.station import kek

S3Archive = Any  # agent.archive.s3.store.S3Archive, which imports this module


class ArchiveEncryptionError(ArchiveError):
    """archive.encryption = "client" lacks a key: the whole queue waits for the operator."""

    retryable = False


class PlaintextSpoolError(ArchiveError):
    """This recording's spool copy is not encrypted yet: it waits, the others go on."""

    store_wide = False


class CipherBody:
    """The bytes of the archived object: `header`, then the envelope's chunks from the file."""

    def __init__(self, src: Path, header: bytes) -> None:
        self.fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.header = header
        self.size = os.fstat(self.fd).st_size
        self._pos = 0

    def pread(self, n: int, offset: int) -> bytes:
        head = self.header[offset : offset + n] if offset < envelope.HEADER_SIZE else b""
        rest = n - len(head)
        if rest <= 0:
            return head
        return head + os.pread(self.fd, rest, offset + len(head))

    def read(self, n: int = -1, /) -> bytes:
        data = self.pread(self.size - self._pos if n < 0 else n, self._pos)
        self._pos += len(data)
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> CipherBody:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def recipients(store: S3Archive) -> envelope.Recipients:
    to = kek.recipients(store.cfg)
    if to is None or to.recovery is None:
        raise ArchiveEncryptionError(
            'archive.encryption = "client" needs the station encryption key (crypto.key_file, '
            "`evidence-agent keys encryption init`) and the agency's recovery key "
            '(crypto.recovery_public_key); set them or archive.encryption = "server"'
        )
    return to


def archive_header(src: Path, keys: envelope.Keyring | None, to: envelope.Recipients) -> bytes:
    """The spool envelope's header if it is wrapped for exactly `to`, else a re-wrapped one."""
    assert to.recovery is not None
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        raw = os.pread(fd, envelope.HEADER_SIZE, 0)
        header = envelope.parse_header(raw, str(src))
        want = {
            (envelope.SLOT_STATION, envelope.kek_id(to.kek)),
            (envelope.SLOT_RECOVERY, envelope.recovery_id(to.recovery)),
        }
        if {(k, i) for k, i, _ in header.slots} == want and len(header.slots) == 2:
            return raw
        return envelope.rewrapped_header(fd, keys or envelope.Keyring(), to, str(src))
    finally:
        os.close(fd)


def describe(header: bytes, size: int) -> dict[str, Any]:
    """What the ledger (custody) and the sidecar say about a client-encrypted object."""
    h = envelope.parse_header(header, "archive header")
    return {
        "mode": "client",
        "suite": envelope.SUITES[h.suite],
        "station_key": h.key_ids(envelope.SLOT_STATION)[0].hex(),
        "recovery_key": h.key_ids(envelope.SLOT_RECOVERY)[0].hex(),
        "object_size": size,
    }


def _same_plaintext(store: S3Archive, src: Path, spec: ObjectSpec, sha: str) -> None:
    if sha != spec.sha256:
        raise SpoolIntegrityError(
            f"spool copy {src} of recording {spec.recording_id} no longer matches its SHA-256 "
            f"(ledger {spec.sha256}, its plaintext now {sha}); it is not archived"
        )


def put(store: S3Archive, src: Path, spec: ObjectSpec) -> Stored:
    to = recipients(store)
    if not sealedio.is_sealed(src):
        raise PlaintextSpoolError(
            f"spool copy {src} of recording {spec.recording_id} is still plaintext and "
            'archive.encryption = "client" uploads only encrypted copies: it is encrypted in '
            "the background (crypto.encrypt_existing_bytes_per_second) or at once with "
            "`evidence-agent keys encryption encrypt-existing`"
        )
    keys = store.ctx.keyring
    header = archive_header(src, keys, to)
    store.preflight()
    key = store.object_key(spec)
    a = store.cfg.archive
    with CipherBody(src, header) as body:
        size = body.size
        small = body.read() if size < a.multipart_threshold_bytes else None
    info = describe(header, size)
    meta = {
        **store._metadata(spec),
        "encryption": "client",
        "envelope-suite": info["suite"],
        "station-key": info["station_key"],
        "recovery-key": info["recovery_key"],
    }
    uploader = MultipartUploader(
        store.client, store.ctx.ledger, store.loc.bucket, a.parallel_parts, store.ctx.stop, store.tr
    )
    resumable = uploader.open_upload(spec.recording_id)
    if small is not None and resumable is None:
        plain, _ = envstream_sha(small, keys, str(src))
        _same_plaintext(store, src, spec, plain)
        checksum = b64(hashlib.sha256(small).digest())
        version = store._put_single(key, spec, small, ChecksumSHA256=checksum, Metadata=meta)
        lock = spec.lock
    else:
        part_size = (
            int(resumable["part_size"])
            if resumable is not None
            else choose_part_size(size, a.part_size_bytes)
        )
        _, parts = plan(src, size, part_size, open_body=lambda: CipherBody(src, header))
        _same_plaintext(store, src, spec, sealedio.hash_plain(src, keys)[0])
        uploader.open_body = lambda: CipherBody(src, header)
        done = uploader.upload(src, replace(spec, size=size), key, part_size, parts, meta)
        version, checksum, lock = done.version_id, done.checksum, done.lock
    stored = verify_object(
        store.client, store.loc.bucket, key, version, sha256=spec.sha256, size=size,
        checksum=checksum, lock=lock, tr=store.tr, keys=keys,
    )  # fmt: skip
    return Stored(
        store.ref(key, version), key, store.loc.bucket, version, stored, lock,
        encryption=info, stored_size=size,
    )  # fmt: skip


def envstream_sha(data: bytes, keys: envelope.Keyring | None, name: str) -> tuple[str, int]:
    """SHA-256 and size of the plaintext of an envelope held in memory."""
    r = envstream.plain_reader(io.BytesIO(data), keys, name)
    h, n = hashlib.sha256(), 0
    while piece := r.read(4 << 20):
        h.update(piece)
        n += len(piece)
    return h.hexdigest(), n
