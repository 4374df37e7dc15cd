"""The station's encryption keys: the KEK ring in `crypto.key_file` and the recovery public key.

The key file holds one or more 32-byte key-encryption keys, base64, one `kek` line each; the
first is the one new copies are wrapped for, the others still open copies until a rotation has
re-wrapped them (`keys encryption rotate`). It lives outside the data dir, mode 0600, owned by
the service user; under systemd it may come as a credential instead (agent.config.crypto).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from agent.config.crypto import CREDENTIAL_NAME, DEFAULT_KEY_FILE
from agent.config.loader import AgentConfig
from agent.core import envelope
from agent.core.errors import EnvelopeKeyError
from agent.core.safefs import fsync_dir
from agent.station import syscreds

_HEAD = "# evidence-agent station encryption key (docs/security.md): secret, back it up offline\n"


def key_path(cfg: AgentConfig, environ: dict[str, str] | None = None) -> Path:
    """Where the station KEK is read from: crypto.key_file, the systemd credential, the default.

    A crypto.key_file that no longer exists gives way to the credential: `keys encryption init
    --systemd-creds` seals that file's key and removes the file (agent.station.syscreds)."""
    creds = (os.environ if environ is None else environ).get("CREDENTIALS_DIRECTORY")
    cred = Path(creds) / CREDENTIAL_NAME if creds else None
    has_cred = cred is not None and cred.is_file()
    key_file = cfg.crypto.key_file
    if key_file is not None and (not has_cred or os.path.lexists(key_file)):
        return key_file
    if cred is not None and has_cred:
        return cred
    return DEFAULT_KEY_FILE


def inside_data_dir(cfg: AgentConfig, path: Path) -> bool:
    data = cfg.station.data_dir.resolve()
    return path.resolve() == data or data in path.resolve().parents


def load_ring(path: Path) -> list[bytes]:
    """The KEKs in `path`, current first; an error names the file and what is wrong."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise EnvelopeKeyError(
            f"station encryption key {path} does not exist: run `evidence-agent keys encryption "
            "init`, or restore it from the key backup (docs/security.md)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvelopeKeyError(f"cannot read station encryption key {path}: {exc}") from None
    return parse_ring(text, path)


def parse_ring(text: str, path: Path) -> list[bytes]:
    """The KEKs of a key file's text (`path` names it in errors)."""
    keys = []
    for n, line in enumerate(text.splitlines(), 1):
        word, _, value = line.strip().partition(" ")
        if not word or word.startswith("#"):
            continue
        try:
            key = base64.b64decode(value.strip(), validate=True)
        except binascii.Error:
            key = b""
        if word != "kek" or len(key) != 32:
            raise EnvelopeKeyError(f"{path}: line {n}: expected `kek <base64 of 32 bytes>`")
        keys.append(key)
    if not keys:
        raise EnvelopeKeyError(f"{path} holds no key (expected `kek <base64>` lines)")
    return keys


def write_ring(path: Path, keys: list[bytes]) -> None:
    """Replace the key file atomically (0600 from creation, never through a symlink)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    text = ring_text(keys)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def ring_text(keys: list[bytes]) -> str:
    """A key file's text: the header, then one `kek <base64>` line per key, current first."""
    return _HEAD + "".join(f"kek {base64.b64encode(k).decode('ascii')}\n" for k in keys)


def load_recovery_public(cfg: AgentConfig) -> X25519PublicKey | None:
    path = cfg.crypto.recovery_public_key
    if path is None:
        return None
    try:
        pub = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise EnvelopeKeyError(
            f"crypto.recovery_public_key {path} cannot be read as a PEM public key: {exc}"
        ) from None
    if not isinstance(pub, X25519PublicKey):
        raise EnvelopeKeyError(f"crypto.recovery_public_key {path} is not an X25519 key")
    return pub


def load_recovery_private(path: Path) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise EnvelopeKeyError(f"recovery key {path} cannot be read: {exc}") from None
    if not isinstance(key, X25519PrivateKey):
        raise EnvelopeKeyError(f"recovery key {path} is not an X25519 private key")
    return key


def new_recovery_pair(out_dir: Path) -> tuple[Path, Path]:
    """A recovery key pair in `out_dir` (private 0600): the private file goes offline."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = X25519PrivateKey.generate()
    priv, pub = out_dir / "recovery.key", out_dir / "recovery.pub"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(priv, flags, 0o600), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with os.fdopen(os.open(pub, flags, 0o644), "wb") as f:
        f.write(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return priv, pub


def keyring(cfg: AgentConfig) -> envelope.Keyring | None:
    """The keys that open this station's envelopes; None when the station has no key."""
    path = key_path(cfg)
    if not path.exists():
        sealed = sealed_keys()
        return None if sealed is None else envelope.Keyring.of(*sealed)
    return envelope.Keyring.of(*load_ring(path))


def sealed_keys() -> list[bytes] | None:
    """The sealed station key, when it exists and this process is root (else None)."""
    text = syscreds.sealed_text()
    return None if text is None else parse_ring(text.decode("ascii"), syscreds.credential_path())


def recipients(cfg: AgentConfig) -> envelope.Recipients | None:
    """Whom new copies are sealed for, or None to write plaintext (crypto.encrypt)."""
    if cfg.crypto.encrypt == "off":
        return None
    path = key_path(cfg)
    if not path.exists() and syscreds.sealed_present():
        # Never plaintext because the key is sealed: open it (root) or refuse, naming the way.
        sealed = sealed_keys()
        if sealed is None:
            raise EnvelopeKeyError(
                f"the station key is sealed in {syscreds.credential_path()}: only the service "
                "(LoadCredentialEncrypted=) and root can open it; run this as root, or inside "
                "the unit's credentials (`systemd-run -P --wait -p User=evidence -p "
                "LoadCredentialEncrypted=...`, docs/security.md)"
            )
        suite = envelope.SUITE_BY_NAME[cfg.crypto.suite]
        return envelope.Recipients(sealed[0], load_recovery_public(cfg), suite)
    if not path.exists() and cfg.crypto.encrypt == "auto":
        return None
    if inside_data_dir(cfg, path):
        raise EnvelopeKeyError(
            f"crypto.key_file {path} lies inside station.data_dir: a copy of the data dir would "
            "carry the key; move it (e.g. to /etc/evidence-agent/keys/) and set crypto.key_file"
        )
    suite = envelope.SUITE_BY_NAME[cfg.crypto.suite]
    return envelope.Recipients(load_ring(path)[0], load_recovery_public(cfg), suite)


def problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    """check-config errors: a required key that is missing, a key inside the data dir."""
    if cfg.crypto.encrypt == "off":
        return _archive_problems(cfg, key_path(cfg))
    path = key_path(cfg)
    out: list[tuple[str, str]] = []
    if cfg.crypto.encrypt == "required" and not path.exists() and not syscreds.sealed_present():
        out.append(
            (
                "crypto.key_file",
                f"{path} does not exist and crypto.encrypt is "
                "'required': run `evidence-agent keys encryption init`",
            )
        )
    if path.exists() and inside_data_dir(cfg, path):
        out.append(
            (
                "crypto.key_file",
                f"{path} lies inside station.data_dir: a copy of the "
                "data dir would carry the key; move it out",
            )
        )
    try:
        load_recovery_public(cfg)
    except EnvelopeKeyError as exc:
        out.append(("crypto.recovery_public_key", str(exc)))
    return out + _archive_problems(cfg, path)


def _archive_problems(cfg: AgentConfig, path: Path) -> list[tuple[str, str]]:
    """archive.encryption = "client" wraps every S3 object for the station key and the
    agency's recovery key: both must be there (agent.archive.s3.sealed)."""
    if cfg.archive.encryption != "client" or cfg.archive_url.startswith("file://"):
        return []
    if cfg.crypto.encrypt == "off" or not path.exists():
        why = f"the station encryption key {path} and crypto.encrypt on (`keys encryption init`)"
    elif cfg.crypto.recovery_public_key is None:
        why = "crypto.recovery_public_key: without it the agency could not open the archive"
    else:
        return []
    return [("archive.encryption", f'"client" needs {why}')]


def warnings(cfg: AgentConfig) -> list[str]:
    """check-config warnings on encryption at rest."""
    if cfg.crypto.encrypt == "off":
        return ["crypto.encrypt is off: spool copies are written in plaintext"]
    path = key_path(cfg)
    # A sealed credential counts: the unit's LoadCredentialEncrypted= hands it to the daemon.
    if not path.exists() and not syscreds.sealed_present():
        return [
            f"crypto.key_file {path} does not exist: spool copies are written in "
            "plaintext; run `evidence-agent keys encryption init` (docs/security.md)"
        ]
    if cfg.crypto.recovery_public_key is None:
        return [
            "crypto.recovery_public_key is not set: losing the station key loses every "
            "encrypted copy; set the agency's recovery key (docs/security.md)"
        ]
    return []
