"""Console keys: the ed25519 key pairs operators sign MQTT commands with (issue 14, item 1).

A console key is named by its key id, `ed25519:` + the 32 raw public-key bytes in unpadded
base64url (43 characters). The key id is what the operator register's `console_keys` column
holds and what a command envelope's `key` names: it is the public key itself, so the station
needs no key store besides the register, and a register row cannot name a key other than
the one that verifies. The private key is a PKCS#8 PEM file, mode 0600, written by
`evidence-agent keys console-new`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from agent.core.errors import AgentError

PREFIX = "ed25519:"
KEY_ID = re.compile(r"^ed25519:[A-Za-z0-9_-]{43}$")
PRIVATE_NAME = "console.key"
PUBLIC_NAME = "console.pub"


class ConsoleKeyError(AgentError):
    """A console key file or key id that cannot be used; the message names it."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def key_id(pub: Ed25519PublicKey) -> str:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + _b64url(raw)


def public_key(kid: str) -> Ed25519PublicKey:
    """The public key a key id names; ValueError if it is not a well-formed key id."""
    if not KEY_ID.match(kid):
        raise ValueError("not a console key id (ed25519: + 43 base64url characters)")
    raw = base64.urlsafe_b64decode(kid[len(PREFIX) :] + "=")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(kid: str, signature_b64: str, message: bytes) -> bool:
    """True if `signature_b64` (standard or url-safe base64) is kid's signature of message."""
    try:
        pub = public_key(kid)
        text = signature_b64.replace("-", "+").replace("_", "/")
        sig = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        pub.verify(sig, message)
    except (ValueError, binascii.Error, InvalidSignature):
        return False
    return True


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def create(out: Path) -> tuple[Path, str]:
    """Write a new key pair into directory `out` (never over an existing key)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / PRIVATE_NAME
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConsoleKeyError(
            f"{path} already exists; keep it, or choose another --out directory"
        ) from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    kid = key_id(key.public_key())
    (out / PUBLIC_NAME).write_text(kid + "\n", encoding="ascii")
    return path, kid


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConsoleKeyError(
            f"{path}: cannot read the console key: {exc.strerror} (make one with "
            "`evidence-agent keys console-new --out DIR`)"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConsoleKeyError(f"{path}: not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConsoleKeyError(f"{path}: not an ed25519 key (console keys are ed25519)")
    return key
