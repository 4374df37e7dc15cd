"""The station key-encryption key sealed as a systemd encrypted credential.

`systemd-creds encrypt --with-key=auto` binds the key to the machine: to its TPM2 where it has
one (and the host key), else to the host key in /var/lib/systemd/credential.secret, readable
by root only. The unit's `LoadCredentialEncrypted=` (install-systemd) has PID 1 decrypt it into
the service's $CREDENTIALS_DIRECTORY, a private in-memory directory, so the plaintext key never
lies on a disk (agent.station.kek reads it there). The key goes to systemd-creds on stdin and
comes back on stdout: no temporary plaintext file. A copy of the credential is useless on
another machine; the recovery key still opens every copy (docs/security.md).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from agent.config.crypto import CREDENTIAL_NAME, CREDSTORE_DIR
from agent.core.errors import EnvelopeKeyError
from agent.core.safefs import fsync_dir

TIMEOUT = 120  # a TPM2 can take seconds per operation


def credential_path(credstore: Path | None = None) -> Path:
    """Where the sealed station key lives (the path `LoadCredentialEncrypted=` names)."""
    return (credstore or CREDSTORE_DIR) / CREDENTIAL_NAME


def _tool() -> str:
    found = shutil.which("systemd-creds")
    if found is None:
        raise EnvelopeKeyError(
            "systemd-creds is not installed (Debian: the systemd package, version 250 or later)"
            ": keep the key file (crypto.key_file) instead, or install systemd"
        )
    return found


def _run(args: list[str], data: bytes, what: str) -> bytes:
    try:
        done = subprocess.run(
            [_tool(), *args], input=data, capture_output=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise EnvelopeKeyError(f"systemd-creds {what} did not finish in {TIMEOUT} s") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EnvelopeKeyError(
            f"systemd-creds {what} failed ({err[-1] if err else f'exit {done.returncode}'}); "
            "it must run as root (the host key is root's)"
        )
    return done.stdout


def seal(secret: bytes, dest: Path, with_key: str = "auto") -> None:
    """Encrypt `secret` as credential CREDENTIAL_NAME into `dest` (0600, atomic, durable)."""
    # 0755: check-config, run as the service user, sees that the key exists; only the
    # credential itself is root's (0600), and it is useless without this machine's host key.
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(8)}.tmp"
    try:
        _run(
            ["encrypt", f"--with-key={with_key}", f"--name={CREDENTIAL_NAME}", "-", str(tmp)],
            secret,
            "encrypt",
        )
        os.chmod(tmp, 0o600)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def unseal(path: Path) -> bytes:
    """The plaintext of sealed credential `path` (root only), for checks: never stored."""
    if not path.is_file():
        raise EnvelopeKeyError(f"sealed station key {path} does not exist")
    return _run(["decrypt", f"--name={CREDENTIAL_NAME}", str(path), "-"], b"", "decrypt")


def sealed_present(credstore: Path | None = None) -> bool:
    """Whether the sealed station key exists (visible to any user: its directory is 0755)."""
    return os.path.isfile(credential_path(credstore))


def sealed_text(credstore: Path | None = None) -> bytes | None:
    """The sealed key's plaintext when this process may open it (root), else None. For commands
    run outside the unit (`sudo evidence-agent verify`); the plaintext stays in memory."""
    if os.geteuid() != 0 or not sealed_present(credstore):
        return None
    return unseal(credential_path(credstore))
