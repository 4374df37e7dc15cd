"""The encrypted envelope of a stored copy: one fresh data key per recording, AES-256-GCM in chunks.

Layout (docs/security.md): a fixed `HEADER_SIZE` header, then the chunks. The header starts with
32 fixed bytes (magic, version, suite, chunk size, a random file id) that every chunk and every
wrapped key authenticates, followed by the wrapped data key "slots": one for the station's key-
encryption key (AES-256-GCM key wrap) and one for the agency's offline recovery key (X25519 +
HKDF-SHA256 + AES-256-GCM). The suite byte names the chunk cipher: AES-256-GCM, or SM4-GCM when
crypto.suite = "sm" (the key slots are the same for both). Rotating or recovering a key rewrites
only the slots; the chunks stay byte for byte what ingest wrote.

Chunk `i` (plaintext `chunk_size` bytes, the last one shorter or empty) is sealed with the nonce
file_id[:7] ‖ i (u32) ‖ final flag, so a flipped, dropped, reordered or cut-off chunk fails its
tag (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár). The final flag comes
from the file's length: a copy cut at a chunk boundary ends in a chunk sealed as "not last".
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent.core.errors import EnvelopeError, EnvelopeKeyError
from agent.core.sm4gcm import SM4GCM

MAGIC = b"EVAENV\x00\x01"
VERSION = 1
SUITE_AES256GCM = 1
SUITE_SM4GCM = 2  # crypto.suite = "sm": chunks sealed with SM4-GCM (GB/T 32907), 128-bit data key
SUITES = {SUITE_AES256GCM: "aes-256-gcm", SUITE_SM4GCM: "sm4-gcm"}
SUITE_BY_NAME = {"intl": SUITE_AES256GCM, "sm": SUITE_SM4GCM}
HEADER_SIZE = 1024
CHUNK_SIZE = 1 << 20
TAG = 16
SLOT_STATION = 1
SLOT_RECOVERY = 2
_FIXED = struct.Struct(">8sBBHI16s")  # magic, version, suite, reserved, chunk size, file id
_SLOT = struct.Struct(">B16sH")  # kind, key id, blob length
_RECOVERY_INFO = b"evidence-agent recovery wrap v1"


def kek_id(kek: bytes) -> bytes:
    """A key-encryption key's id: a domain-separated hash, which reveals nothing of the key."""
    return hashlib.sha256(b"evidence-agent kek id\x00" + kek).digest()[:16]


def recovery_id(pub: X25519PublicKey) -> bytes:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:16]


@dataclass(frozen=True)
class Recipients:
    """Whom a new envelope's data key is wrapped for: the station KEK and the recovery key."""

    kek: bytes
    recovery: X25519PublicKey | None = None
    suite: int = SUITE_AES256GCM  # the chunk cipher of new envelopes (crypto.suite)

    def __post_init__(self) -> None:
        if len(self.kek) != 32:
            raise EnvelopeKeyError("a station key-encryption key is 32 bytes")


@dataclass
class Keyring:
    """What opens envelopes: station KEKs by id (current and not yet retired), and on a
    recovering machine the recovery private key."""

    keks: dict[bytes, bytes] = field(default_factory=dict)
    recovery: X25519PrivateKey | None = None
    # Slots re-wrapped for copies that cannot be rewritten (S3 objects under Object Lock), by
    # file id: tried after the copy's own slots (agent.archive.s3.rekey).
    extra_slots: dict[bytes, list[tuple[int, bytes, bytes]]] = field(default_factory=dict)

    @classmethod
    def of(cls, *keks: bytes, recovery: X25519PrivateKey | None = None) -> Keyring:
        return cls({kek_id(k): k for k in keks}, recovery)


@dataclass
class Header:
    suite: int
    chunk_size: int
    file_id: bytes
    slots: list[tuple[int, bytes, bytes]]  # (kind, key id, wrapped blob)

    @property
    def fixed(self) -> bytes:
        return _FIXED.pack(MAGIC, VERSION, self.suite, 0, self.chunk_size, self.file_id)

    def to_bytes(self) -> bytes:
        out = bytearray(self.fixed)
        out.append(len(self.slots))
        for kind, kid, blob in self.slots:
            out += _SLOT.pack(kind, kid, len(blob)) + blob
        if len(out) > HEADER_SIZE:
            raise EnvelopeError("too many key slots for the envelope header")
        return bytes(out.ljust(HEADER_SIZE, b"\x00"))

    def key_ids(self, kind: int) -> list[bytes]:
        return [kid for k, kid, _ in self.slots if k == kind]


def is_envelope(head: bytes) -> bool:
    return head[: len(MAGIC)] == MAGIC


def parse_header(raw: bytes, name: str) -> Header:
    if len(raw) < HEADER_SIZE or not is_envelope(raw):
        raise EnvelopeError(f"{name} is not an encrypted copy (no envelope header)")
    magic, version, suite, _, chunk, file_id = _FIXED.unpack_from(raw)
    if version != VERSION or suite not in SUITES:
        raise EnvelopeError(
            f"{name}: envelope version {version} suite {suite} is not supported by this agent "
            "version; upgrade the agent to read it"
        )
    if not 4096 <= chunk <= 64 << 20:
        raise EnvelopeError(f"{name}: envelope header names an invalid chunk size {chunk}")
    slots, pos = [], _FIXED.size + 1
    for _ in range(raw[_FIXED.size]):
        if pos + _SLOT.size > HEADER_SIZE:
            raise EnvelopeError(f"{name}: envelope header is damaged (slots overrun)")
        kind, kid, n = _SLOT.unpack_from(raw, pos)
        pos += _SLOT.size
        if pos + n > HEADER_SIZE:
            raise EnvelopeError(f"{name}: envelope header is damaged (slot overruns)")
        slots.append((kind, kid, raw[pos : pos + n]))
        pos += n
    return Header(suite, chunk, file_id, slots)


def _slot_aad(header: Header, kind: int, kid: bytes) -> bytes:
    return header.fixed + bytes([kind]) + kid


def wrap(header: Header, dk: bytes, to: Recipients) -> Header:
    """`header` with its slots replaced by `dk` wrapped for `to` (the chunks are untouched)."""
    kid = kek_id(to.kek)
    nonce = os.urandom(12)
    slots = [
        (SLOT_STATION, kid, nonce + AESGCM(to.kek).encrypt(nonce, dk, _slot_aad(header, 1, kid)))
    ]
    if to.recovery is not None:
        rid = recovery_id(to.recovery)
        eph = X25519PrivateKey.generate()
        eph_pub = eph.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        wk = _recovery_kek(eph.exchange(to.recovery), eph_pub, rid)
        nonce = os.urandom(12)
        sealed = AESGCM(wk).encrypt(nonce, dk, _slot_aad(header, SLOT_RECOVERY, rid))
        slots.append((SLOT_RECOVERY, rid, eph_pub + nonce + sealed))
    return Header(header.suite, header.chunk_size, header.file_id, slots)


def _recovery_kek(shared: bytes, eph_pub: bytes, rid: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + rid, info=_RECOVERY_INFO)
    return hkdf.derive(shared)


def unwrap(header: Header, keys: Keyring, name: str) -> bytes:
    """The data key, from whichever slot `keys` opens; an error names the keys it needs."""
    for kind, kid, blob in header.slots + keys.extra_slots.get(header.file_id, []):
        try:
            if kind == SLOT_STATION and kid in keys.keks:
                aad = _slot_aad(header, kind, kid)
                return AESGCM(keys.keks[kid]).decrypt(blob[:12], blob[12:], aad)
            if kind == SLOT_RECOVERY and keys.recovery is not None:
                if kid != recovery_id(keys.recovery.public_key()):
                    continue
                eph_pub = X25519PublicKey.from_public_bytes(blob[:32])
                wk = _recovery_kek(keys.recovery.exchange(eph_pub), blob[:32], kid)
                return AESGCM(wk).decrypt(blob[32:44], blob[44:], _slot_aad(header, kind, kid))
        except (InvalidTag, ValueError) as exc:
            raise EnvelopeError(f"{name}: its wrapped data key fails authentication") from exc
    want = ", ".join(f"{'station' if k == 1 else 'recovery'} key {i.hex()}" for k, i, _ in
                     header.slots)  # fmt: skip
    raise EnvelopeKeyError(
        f"{name} is encrypted for {want or 'no key'}, none of which this station holds: "
        "restore crypto.key_file from the station's key backup, or run `evidence-agent keys "
        "encryption recover` with the agency's recovery key (docs/security.md)"
    )


def _chunk_aead(suite: int, dk: bytes) -> AESGCM | SM4GCM:
    """The chunk cipher the header's suite byte names (whatever crypto.suite is now)."""
    return SM4GCM(dk) if suite == SUITE_SM4GCM else AESGCM(dk)


def _nonce(file_id: bytes, index: int, final: bool) -> bytes:
    return file_id[:7] + struct.pack(">IB", index, 1 if final else 0)


chunk_cipher = _chunk_aead  # for readers of envelopes outside a file (agent.core.envstream)


def open_chunk(
    aead: AESGCM | SM4GCM, header: Header, i: int, final: bool, raw: bytes, name: str
) -> bytes:
    """Plaintext of sealed chunk `i`; an error names the copy and the chunk."""
    try:
        return aead.decrypt(_nonce(header.file_id, i, final), raw, header.fixed)
    except InvalidTag:
        where = "last chunk" if final else "chunk"
        raise EnvelopeError(
            f"{name}: {where} {i} fails authentication: the encrypted copy was altered, "
            "truncated, or had chunks dropped or reordered"
        ) from None


class Sealer:
    """Streaming encryption of one copy: feed plaintext with `update`, end with `finish`.

    Holds back up to one chunk, because the last chunk is sealed differently and is known to
    be the last only when the input ends.
    """

    def __init__(self, to: Recipients, chunk_size: int = CHUNK_SIZE) -> None:
        if to.suite not in SUITES:
            raise EnvelopeError(f"unknown envelope suite {to.suite} (crypto.suite)")
        self._dk = os.urandom(16 if to.suite == SUITE_SM4GCM else 32)
        self._aead = _chunk_aead(to.suite, self._dk)
        blank = Header(to.suite, chunk_size, os.urandom(16), [])
        self.header_obj = wrap(blank, self._dk, to)
        self.header = self.header_obj.to_bytes()
        self._aad = blank.fixed
        self._chunk = chunk_size
        self._buf = bytearray()
        self._index = 0

    def _seal(self, data: bytes | bytearray | memoryview, final: bool) -> bytes:
        out = self._aead.encrypt(_nonce(self.header_obj.file_id, self._index, final), data,
                                 self._aad)  # fmt: skip
        self._index += 1
        return out

    def update(self, data: bytes | memoryview) -> list[bytes]:
        """Sealed chunks now complete (never the last one)."""
        out: list[bytes] = []
        view = memoryview(data)
        if self._buf:
            take = self._chunk - len(self._buf)
            if len(view) <= take:  # not more than one chunk yet: it may be the last
                self._buf += view
                return out
            self._buf += view[:take]
            view = view[take:]
            out.append(self._seal(self._buf, False))
            self._buf = bytearray()
        while len(view) > self._chunk:  # whole chunks straight from the caller's buffer
            out.append(self._seal(view[: self._chunk], False))
            view = view[self._chunk :]
        self._buf += view
        return out

    def finish(self) -> bytes:
        """The last chunk (possibly of no plaintext, which still carries its tag)."""
        last = self._seal(bytes(self._buf), True)
        self._buf.clear()
        return last


def seal_bytes(to: Recipients, data: bytes) -> bytes:
    """A whole small file (a thumbnail) as one envelope, for data already in memory."""
    sealer = Sealer(to)
    return sealer.header + b"".join(sealer.update(data)) + sealer.finish()


def ciphertext_size(plain: int, chunk_size: int = CHUNK_SIZE) -> int:
    chunks = max(1, -(-plain // chunk_size))
    return HEADER_SIZE + plain + chunks * TAG


class Opened:
    """An envelope opened for reading by chunk or by plaintext offset (file descriptor `fd`
    stays the caller's)."""

    def __init__(self, fd: int, keys: Keyring, name: str) -> None:
        self.fd, self.name = fd, name
        self.header = parse_header(os.pread(fd, HEADER_SIZE, 0), name)
        body = os.fstat(fd).st_size - HEADER_SIZE
        step = self.header.chunk_size + TAG
        self.chunks = -(-body // step) if body > 0 else 0
        if self.chunks == 0:
            raise EnvelopeError(f"{name} is truncated: its envelope holds no chunk")
        last = body - (self.chunks - 1) * step
        if last < TAG:
            raise EnvelopeError(f"{name} is truncated inside its last chunk's tag")
        self.size = body - self.chunks * TAG
        self.dk = unwrap(self.header, keys, name)
        self._aead = _chunk_aead(self.header.suite, self.dk)
        self._aad = self.header.fixed
        self._last: tuple[int, bytes] = (-1, b"")  # small reads of one chunk decrypt it once

    def chunk(self, i: int) -> bytes:
        """Plaintext of chunk `i`, authenticated; an error names the copy and the chunk."""
        step = self.header.chunk_size + TAG
        raw = os.pread(self.fd, step, HEADER_SIZE + i * step)
        final = i == self.chunks - 1
        try:
            return self._aead.decrypt(_nonce(self.header.file_id, i, final), raw, self._aad)
        except InvalidTag:
            where = "last chunk" if final else "chunk"
            raise EnvelopeError(
                f"{self.name}: {where} {i} of {self.chunks} fails authentication: the encrypted "
                "copy was altered, truncated, or had chunks dropped or reordered"
            ) from None

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.chunks):
            yield self.chunk(i)

    def pread(self, n: int, offset: int) -> bytes:
        """Up to `n` plaintext bytes at `offset` (whole chunks are decrypted and checked)."""
        out: list[bytes] = []
        cs = self.header.chunk_size
        while n > 0 and offset < self.size:
            i, skip = divmod(offset, cs)
            last = self._last
            if last[0] != i:
                last = self._last = (i, self.chunk(i))
            piece = last[1][skip : skip + n]  # the whole chunk is not copied again
            out.append(piece)
            offset += len(piece)
            n -= len(piece)
        return out[0] if len(out) == 1 else b"".join(out)


def rewrapped_header(fd: int, keys: Keyring, to: Recipients, name: str) -> bytes:
    """The header of an envelope with its data key wrapped for `to` instead (rotation,
    recovery); the chunks are not read."""
    return rewrap_bytes(os.pread(fd, HEADER_SIZE, 0), keys, to, name)


def rewrap_bytes(raw: bytes, keys: Keyring, to: Recipients, name: str) -> bytes:
    header = parse_header(raw, name)
    return wrap(header, unwrap(header, keys, name), to).to_bytes()
