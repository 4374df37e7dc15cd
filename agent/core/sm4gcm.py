"""SM4-GCM (GB/T 32907 block cipher in NIST SP 800-38D Galois/Counter mode) as a one-shot AEAD.

`cryptography` has no SM4 entry in its `aead` module, but its `Cipher(algorithms.SM4(k),
modes.GCM(nonce))` runs OpenSSL's SM4-GCM; this class gives it the `AESGCM` interface the
envelope uses (ciphertext ‖ 16-byte tag, 12-byte nonce, associated data).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TAG = 16


class SM4GCM:
    """`encrypt`/`decrypt` like `AESGCM`, with a 128-bit SM4 key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("an SM4 key is 16 bytes")
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes | bytearray | memoryview, aad: bytes) -> bytes:
        enc = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        out = enc.update(data) + enc.finalize()
        return out + enc.tag

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        if len(data) < TAG:
            raise InvalidTag()
        dec = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, data[-TAG:])).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(data[:-TAG]) + dec.finalize()
