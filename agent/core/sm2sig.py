"""SM2 signatures (GB/T 32918, with SM3 and the default user id) for `crypto.suite = "sm"`.

`cryptography` has no SM2 signing; this wraps `gmalg` (pure Python, no native code, nonces from
`secrets`). `gmssl` was not taken: its SM2 nonce comes from `random.choice`, a predictable
generator, which leaks the private key from signatures. Signatures are DER (r, s), the form
`openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678` checks; public
keys are SubjectPublicKeyInfo PEM, which `openssl pkey -pubin` reads.
"""

from __future__ import annotations

import base64

import gmalg
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

UID = b"1234567812345678"  # GB/T 35276 default distinguishing id
# SubjectPublicKeyInfo of an SM2 point: id-ecPublicKey, curve sm2p256v1, then the 65-byte point.
_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


def generate() -> tuple[bytes, bytes]:
    """A new (private key 32 bytes, public point 65 bytes uncompressed)."""
    sk, pk = gmalg.SM2().generate_keypair()
    return sk, pk


def public_of(sk: bytes) -> bytes:
    return bytes(gmalg.SM2().generate_pk(sk))


def sign(sk: bytes, pk: bytes, message: bytes) -> bytes:
    """DER signature of `message` (SM3 over Z_A ‖ message, Z_A from the default id)."""
    r, s = gmalg.SM2(sk=sk, uid=UID, pk=pk).sign(message)
    return encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))


def verify(pk: bytes, message: bytes, der: bytes) -> bool:
    try:
        r, s = decode_dss_signature(der)
        return bool(
            gmalg.SM2(uid=UID, pk=pk).verify(message, r.to_bytes(32, "big"), s.to_bytes(32, "big"))
        )
    except (ValueError, OverflowError):
        return False


def public_pem(pk: bytes) -> str:
    b64 = base64.b64encode(_SPKI_PREFIX + pk).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def public_from_pem(pem: str) -> bytes:
    """The 65-byte point of an SM2 SubjectPublicKeyInfo PEM (as public_pem writes it)."""
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body, validate=True)
    if not der.startswith(_SPKI_PREFIX) or len(der) != len(_SPKI_PREFIX) + 65:
        raise ValueError("not an SM2 public key (SubjectPublicKeyInfo, sm2p256v1)")
    return der[len(_SPKI_PREFIX) :]
