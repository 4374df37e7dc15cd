"""The station's ed25519 signing key: generated on first start, kept 0600 under data_dir.

Once checkpoints signed with it exist, a missing key stops the agent (see load_or_create).
The public key always stays in `keys_dir`; the private key is `keys_dir/station.ed25519.pem`
unless `custody.signing_key_file` puts it elsewhere (`key_file`, agent.station.signingkey).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.core.errors import StationKeyError
from agent.core.safefs import fsync_dir

KEY_FILE = "station.ed25519.pem"
PUB_FILE = "station.ed25519.pub"
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def public_raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(pub: Ed25519PublicKey) -> str:
    return "sha256:" + hashlib.sha256(public_raw(pub)).hexdigest()[:32]


def private_path(keys_dir: Path, key_file: Path | None = None) -> Path:
    """Where the private key is: `key_file` (custody.signing_key_file) or the default."""
    return key_file if key_file is not None else keys_dir / KEY_FILE


def load_or_create(
    keys_dir: Path, checkpoints: int = 0, key_file: Path | None = None
) -> Ed25519PrivateKey:
    """The station key; made on first start. With `checkpoints` (signed checkpoints in the
    ledger) a missing key is an error naming the file to restore, never a silent new key:
    every earlier checkpoint would fail `verify` against a replacement."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = private_path(keys_dir, key_file)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return read_private(path)
    except FileNotFoundError:
        # custody.signing_key_file set but the key still in keys/: never a second key.
        left = key_file is not None and os.path.lexists(keys_dir / KEY_FILE)
        if checkpoints or left:
            raise StationKeyError(missing_message(keys_dir, checkpoints, key_file)) from None
        return _create(keys_dir, path)


def read_private(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 signing key in `path`, never through a symlink; a missing file raises
    FileNotFoundError (the caller decides what that means), anything else StationKeyError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StationKeyError(
            f"station key {path} cannot be opened ({exc.strerror}); it must be a regular file, "
            "not a symlink, readable by the service user"
        ) from exc
    with os.fdopen(fd, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise StationKeyError(f"{path} is not an ed25519 key")
    return key


def missing_message(keys_dir: Path, checkpoints: int, key_file: Path | None = None) -> str:
    """What to do about a missing station key that `checkpoints` signed checkpoints need."""
    path = private_path(keys_dir, key_file)
    pub = load_public(keys_dir)
    which = f" (key fingerprint {fingerprint(pub)})" if pub is not None else ""
    if key_file is not None and os.path.lexists(keys_dir / KEY_FILE):
        return (
            f"station key {path} (custody.signing_key_file) does not exist, but the station's "
            f"key{which} is still at {keys_dir / KEY_FILE}: run `evidence-agent keys "
            "move-signing` (daemon stopped) to move it there; the agent does not make a second "
            "key, which would not match the enrolled fingerprint"
        )
    return (
        f"station key {path} is missing, but the ledger holds {checkpoints} checkpoint(s) "
        f"signed with it{which}. Restore {path} from the station's backup and start again; "
        "the agent does not make a replacement key, which would leave every earlier "
        "checkpoint unverifiable"
    )


def _create(keys_dir: Path, path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # 0600 from creation (never readable by others, not even briefly); O_EXCL|O_NOFOLLOW so a
    # planted file or symlink is never written through; link() never replaces an existing key.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        with os.fdopen(os.open(tmp, _NEW, 0o600), "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process made it first: use that one
            return load_or_create(keys_dir, key_file=path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub_tmp = keys_dir / f".{PUB_FILE}.{secrets.token_hex(8)}.tmp"
    fd = os.open(pub_tmp, _NEW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pub_pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(pub_tmp, keys_dir / PUB_FILE)  # replaces a link itself, never its target
    fsync_dir(keys_dir)
    return key


def load_public(keys_dir: Path) -> Ed25519PublicKey | None:
    path = keys_dir / PUB_FILE
    if not path.exists():
        return None
    pub = serialization.load_pem_public_key(path.read_bytes())
    return pub if isinstance(pub, Ed25519PublicKey) else None
