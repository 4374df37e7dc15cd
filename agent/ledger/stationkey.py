"""The station's ed25519 signing key: generated on first start, kept 0600 under data_dir."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = "station.ed25519.pem"
PUB_FILE = "station.ed25519.pub"


def public_raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(pub: Ed25519PublicKey) -> str:
    return "sha256:" + hashlib.sha256(public_raw(pub)).hexdigest()[:32]


def load_or_create(keys_dir: Path) -> Ed25519PrivateKey:
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys_dir / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL + 0600 at creation: the private key is never readable by others, not even briefly.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (keys_dir / PUB_FILE).write_bytes(pub_pem)
    return key


def load_public(keys_dir: Path) -> Ed25519PublicKey | None:
    path = keys_dir / PUB_FILE
    if not path.exists():
        return None
    pub = serialization.load_pem_public_key(path.read_bytes())
    return pub if isinstance(pub, Ed25519PublicKey) else None
