"""Reading an envelope from a stream (agent/core/envstream.py: S3 objects under
archive.encryption = "client"): the plaintext comes out whole; a flipped, dropped, reordered or
cut-off chunk fails naming the object and the chunk; plaintext objects pass through."""

from __future__ import annotations

import io
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from agent.core import envelope, envstream
from agent.core.errors import EnvelopeError, EnvelopeKeyError

CHUNK = 4096
STEP = CHUNK + envelope.TAG
KEK = bytes(range(32))
RECOVERY = X25519PrivateKey.from_private_bytes(bytes(range(32, 64)))


class Trickle(io.RawIOBase):
    """A stream that hands out at most 1000 bytes a read, as a network body may."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n: int = -1, /) -> bytes:
        return self._f.read(1000 if n < 0 else min(n, 1000))


def _seal(data: bytes) -> bytes:
    s = envelope.Sealer(envelope.Recipients(KEK, RECOVERY.public_key()), CHUNK)
    return b"".join([s.header, *s.update(data), s.finish()])


def _read(blob: bytes, keys: envelope.Keyring, size: int = 777) -> bytes:
    r = envstream.plain_reader(Trickle(blob), keys, "archived object k")
    out = []
    while piece := r.read(size):
        out.append(piece)
    return b"".join(out)


@pytest.mark.parametrize("n", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_round_trip_with_the_station_key_or_the_recovery_key(n: int) -> None:
    data = os.urandom(n)
    blob = _seal(data)
    assert _read(blob, envelope.Keyring.of(KEK)) == data
    assert _read(blob, envelope.Keyring(recovery=RECOVERY), size=-1) == data


def test_damage_fails_naming_the_object_and_the_chunk() -> None:
    data = os.urandom(3 * CHUNK + 100)
    blob = _seal(data)
    head, body = blob[: envelope.HEADER_SIZE], blob[envelope.HEADER_SIZE :]
    chunks = [body[i : i + STEP] for i in range(0, len(body), STEP)]
    flipped = bytearray(blob)
    flipped[envelope.HEADER_SIZE + STEP + 9] ^= 1
    cases = {
        "flipped": bytes(flipped),
        "dropped": head + chunks[0] + chunks[2] + chunks[3],
        "reordered": head + chunks[1] + chunks[0] + chunks[2] + chunks[3],
        "cut at a chunk": head + b"".join(chunks[:3]),
        "cut in a chunk": blob[:-50],
    }
    keys = envelope.Keyring.of(KEK)
    for bad in cases.values():
        with pytest.raises(EnvelopeError, match=r"archived object k: (last )?chunk \d+"):
            _read(bad, keys)


def test_plaintext_passes_through_and_a_missing_key_is_named() -> None:
    data = os.urandom(5000)
    assert _read(data, envelope.Keyring.of(KEK)) == data
    assert _read(b"", envelope.Keyring.of(KEK)) == b""
    with pytest.raises(EnvelopeKeyError, match="archived object k"):
        _read(_seal(data), envelope.Keyring.of(os.urandom(32)))
    with pytest.raises(EnvelopeKeyError, match="no encryption key"):
        envstream.plain_reader(io.BytesIO(_seal(data)), None, "archived object k")
