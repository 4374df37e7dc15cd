"""The encrypted envelope (agent/core/envelope.py): round trip, and every single-chunk flip,
drop, reorder and truncation fails with an error naming the copy and the chunk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core import envelope, sealedio
from agent.core.errors import EnvelopeError, EnvelopeKeyError

CHUNK = 4096
KEK = bytes(range(32))
RECOVERY = X25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def seal(data: bytes, pieces: list[int] | None = None) -> bytes:
    s = envelope.Sealer(envelope.Recipients(KEK, RECOVERY.public_key()), CHUNK)
    out = [s.header]
    pos = 0
    for n in pieces or [len(data)]:
        out += s.update(data[pos : pos + n])
        pos += n
    out += s.update(data[pos:])
    out.append(s.finish())
    return b"".join(out)


def read_all(path: Path, keys: envelope.Keyring) -> bytes:
    with sealedio.PlainReader(path, keys) as r:
        return b"".join(sealedio.iter_plain(r))


def chunks_of(blob: bytes) -> tuple[bytes, list[bytes]]:
    body = blob[envelope.HEADER_SIZE :]
    step = CHUNK + envelope.TAG
    return blob[: envelope.HEADER_SIZE], [body[i : i + step] for i in range(0, len(body), step)]


@SETTINGS
@given(data=st.binary(max_size=5 * CHUNK + 7), cuts=st.lists(st.integers(0, 3 * CHUNK), max_size=4))
def test_round_trip_through_both_keys(tmp_path, data, cuts):
    p = tmp_path / "c"
    p.write_bytes(seal(data, cuts))
    assert len(p.read_bytes()) == envelope.ciphertext_size(len(data), CHUNK)
    assert read_all(p, envelope.Keyring.of(KEK)) == data
    assert read_all(p, envelope.Keyring(recovery=RECOVERY)) == data
    with sealedio.PlainReader(p, envelope.Keyring.of(KEK)) as r:
        assert r.size == len(data)
        r.seek(len(data) // 3)
        assert r.read() == data[len(data) // 3 :]
    assert sealedio.hash_plain(p, envelope.Keyring.of(KEK))[1] == len(data)


def _tampered(blob: bytes, how: str, i: int, j: int) -> bytes | None:
    head, chunks = chunks_of(blob)
    i, j = i % len(chunks), j % len(chunks)
    if how == "flip":
        c = bytearray(chunks[i])
        c[j % len(c)] ^= 0x01
        chunks[i] = bytes(c)
    elif how == "drop":
        if len(chunks) == 1:
            return None
        del chunks[i]
    elif how == "swap":
        if chunks[i] == chunks[j]:
            return None
        chunks[i], chunks[j] = chunks[j], chunks[i]
    elif how == "truncate_chunks":
        if i == 0:
            return None
        chunks = chunks[:i]
    elif how == "truncate_bytes":
        cut = j % len(chunks[-1])
        chunks[-1] = chunks[-1][:cut]
        if not chunks[-1]:
            chunks.pop()
            if not chunks:
                return head
    return head + b"".join(chunks)


@SETTINGS
@given(
    data=st.binary(min_size=1, max_size=4 * CHUNK),
    how=st.sampled_from(["flip", "drop", "swap", "truncate_chunks", "truncate_bytes"]),
    i=st.integers(0, 10),
    j=st.integers(0, 10**6),
)
def test_every_single_chunk_change_is_detected(tmp_path, data, how, i, j):
    bad = _tampered(seal(data), how, i, j)
    if bad is None:
        return
    p = tmp_path / "copy.mp4"
    p.write_bytes(bad)
    with pytest.raises(EnvelopeError, match=r"copy\.mp4"):
        read_all(p, envelope.Keyring.of(KEK))


def test_flipped_header_and_missing_key_are_named(tmp_path):
    blob = bytearray(seal(b"x" * 10000))
    p = tmp_path / "c"
    p.write_bytes(bytes(blob))
    with pytest.raises(EnvelopeKeyError, match="crypto.key_file"):
        read_all(p, envelope.Keyring.of(os.urandom(32)))
    blob[20] ^= 1  # the chunk size field, which every wrapped key authenticates
    p.write_bytes(bytes(blob))
    with pytest.raises(EnvelopeError):
        read_all(p, envelope.Keyring.of(KEK))


def test_rewrap_changes_only_the_header(tmp_path):
    data = os.urandom(3 * CHUNK + 5)
    p = tmp_path / "c"
    p.write_bytes(seal(data))
    new_kek = os.urandom(32)
    fd = os.open(p, os.O_RDONLY)
    try:
        head = envelope.rewrapped_header(
            fd, envelope.Keyring.of(KEK), envelope.Recipients(new_kek), "c"
        )
    finally:
        os.close(fd)
    q = tmp_path / "d"
    q.write_bytes(head + p.read_bytes()[envelope.HEADER_SIZE :])
    assert read_all(q, envelope.Keyring.of(new_kek)) == data
    with pytest.raises(EnvelopeKeyError):
        read_all(q, envelope.Keyring.of(KEK))


def test_plain_copies_read_as_they_are(tmp_path):
    p = tmp_path / "plain"
    p.write_bytes(b"plain bytes")
    assert read_all(p, None) == b"plain bytes"
    p.write_bytes(seal(b"secret"))
    with pytest.raises(EnvelopeKeyError, match="crypto.key_file"):
        read_all(p, None)
