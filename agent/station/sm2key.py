"""The station's SM2 signing key for `crypto.suite = "sm"` (export manifests), beside the
Ed25519 station key in `keys_dir`: made on first use, mode 0600, never replaced in place.

File format: one line `sm2 <64 hex digits>` (the private scalar); the public point is derived.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from agent.core import sm2sig
from agent.core.errors import StationKeyError
from agent.core.safefs import fsync_dir

KEY_FILE = "station.sm2.key"
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def load_or_create(keys_dir: Path) -> tuple[bytes, bytes]:
    """(private key, public point) of the station's SM2 key; made when there is none yet."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return _create(keys_dir, path)
    except OSError as exc:
        raise StationKeyError(
            f"SM2 station key {path} cannot be opened ({exc.strerror}); it must be a regular "
            "file, not a symlink, readable by the service user"
        ) from exc
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as fh:
        words = fh.read().split()
    try:
        if len(words) != 2 or words[0] != "sm2" or len(words[1]) != 64:
            raise ValueError
        sk = bytes.fromhex(words[1])
        return sk, sm2sig.public_of(sk)
    except ValueError:
        raise StationKeyError(
            f"{path} is not an SM2 station key (`sm2 <64 hex digits>`): restore it from the "
            "station's backup"
        ) from None


def _create(keys_dir: Path, path: Path) -> tuple[bytes, bytes]:
    sk, pk = sm2sig.generate()
    tmp = keys_dir / f".{KEY_FILE}.{secrets.token_hex(8)}.tmp"
    try:
        with os.fdopen(os.open(tmp, _NEW, 0o600), "w", encoding="ascii") as fh:
            fh.write(f"sm2 {sk.hex()}\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # never replaces a key another process made meanwhile
        except FileExistsError:
            return load_or_create(keys_dir)
        fsync_dir(keys_dir)
    finally:
        tmp.unlink(missing_ok=True)
    return sk, pk
