"""crypto.suite = "sm": SM4-GCM envelopes (agent/core/envelope.py, agent/core/sm4gcm.py).

The chunks are checked against an independent implementation: OpenSSL's command line has no
SM4-GCM in `openssl enc`, so the test rebuilds GCM from its parts (SP 800-38D): the keystream is
`openssl enc -sm4-ctr` from counter block nonce ‖ 2, and the tag is GHASH (written here in plain
Python) XOR `openssl enc -sm4-ecb` of nonce ‖ 1, with H = SM4(0^128) from `openssl enc -sm4-ecb`.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from agent.core import envelope, sealedio
from agent.core.errors import EnvelopeError
from toolcheck import require_tool

CHUNK = 4096
KEK = bytes(range(32))


def seal(data: bytes, suite: int) -> bytes:
    s = envelope.Sealer(envelope.Recipients(KEK, None, suite), CHUNK)
    return b"".join([s.header, *s.update(data), s.finish()])


def _openssl(args: list[str], data: bytes) -> bytes:
    cmd = [require_tool("openssl"), "enc", *args, "-nopad", "-nosalt"]
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout


def _sm4_block(key: bytes, block: bytes) -> bytes:
    return _openssl(["-sm4-ecb", "-K", key.hex()], block)


def _gf_mult(x: int, y: int) -> int:
    r = 0xE1 << 120
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ r if v & 1 else v >> 1
    return z


def _ghash(h: bytes, aad: bytes, ct: bytes) -> bytes:
    def blocks(b: bytes) -> list[bytes]:
        b += b"\x00" * (-len(b) % 16)
        return [b[i : i + 16] for i in range(0, len(b), 16)]

    hk, y = int.from_bytes(h, "big"), 0
    for blk in [*blocks(aad), *blocks(ct), struct.pack(">QQ", len(aad) * 8, len(ct) * 8)]:
        y = _gf_mult(y ^ int.from_bytes(blk, "big"), hk)
    return y.to_bytes(16, "big")


def openssl_open_chunk(dk: bytes, nonce: bytes, aad: bytes, sealed: bytes) -> bytes:
    """Plaintext of one SM4-GCM chunk by the OpenSSL command line; asserts its tag."""
    ct, tag = sealed[:-16], sealed[-16:]
    plain = _openssl(["-d", "-sm4-ctr", "-K", dk.hex(), "-iv", (nonce + b"\0\0\0\2").hex()], ct)
    h = _sm4_block(dk, bytes(16))
    ej0 = _sm4_block(dk, nonce + b"\0\0\0\1")
    want = bytes(a ^ b for a, b in zip(_ghash(h, aad, ct), ej0, strict=True))
    assert want == tag, "the SM4-GCM tag does not match OpenSSL's SM4 + GHASH"
    return plain


def test_sm4_envelope_decrypts_with_openssl(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK + 333)
    p = tmp_path / "c"
    p.write_bytes(seal(data, envelope.SUITE_SM4GCM))
    fd = os.open(p, os.O_RDONLY)
    try:
        opened = envelope.Opened(fd, envelope.Keyring.of(KEK), "c")
        assert opened.header.suite == envelope.SUITE_SM4GCM
        assert len(opened.dk) == 16
        raw = p.read_bytes()[envelope.HEADER_SIZE :]
        step = CHUNK + envelope.TAG
        out = b""
        for i in range(opened.chunks):
            nonce = opened.header.file_id[:7] + struct.pack(">IB", i, int(i == opened.chunks - 1))
            sealed = raw[i * step : (i + 1) * step]
            out += openssl_open_chunk(opened.dk, nonce, opened.header.fixed, sealed)
    finally:
        os.close(fd)
    assert out == data


@pytest.mark.parametrize("suite", [envelope.SUITE_AES256GCM, envelope.SUITE_SM4GCM])
def test_either_suite_reads_back_and_flips_fail(tmp_path: Path, suite: int) -> None:
    data = os.urandom(3 * CHUNK + 5)
    p = tmp_path / "c"
    blob = bytearray(seal(data, suite))
    p.write_bytes(blob)
    with sealedio.PlainReader(p, envelope.Keyring.of(KEK)) as r:  # no suite given: the header's
        assert b"".join(sealedio.iter_plain(r)) == data
    blob[envelope.HEADER_SIZE + CHUNK + 40] ^= 1
    p.chmod(0o600)
    p.write_bytes(blob)
    with pytest.raises(EnvelopeError, match="chunk 1 of 4 fails"):
        with sealedio.PlainReader(p, envelope.Keyring.of(KEK)) as r:
            b"".join(sealedio.iter_plain(r))


def test_unknown_suite_byte_is_refused(tmp_path: Path) -> None:
    blob = bytearray(seal(b"x", envelope.SUITE_SM4GCM))
    blob[9] = 7
    with pytest.raises(EnvelopeError, match="suite 7 is not supported"):
        envelope.parse_header(bytes(blob), "c")
