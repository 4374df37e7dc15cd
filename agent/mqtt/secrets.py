"""MQTT user name and password from the credentials, never from the TOML.

Looked up, first found wins:
  1. `$CREDENTIALS_DIRECTORY/mqtt_username`, `$CREDENTIALS_DIRECTORY/mqtt_password` (systemd
     `LoadCredential=`: one secret per file, trailing newline stripped);
  2. `MQTT_USERNAME=` / `MQTT_PASSWORD=` lines of `$CREDENTIALS_DIRECTORY/evidence-agent`;
  3. the same lines of `credentials.file` (KEY=VALUE, mode 0600).
A minimal reader until agent/credentials.py unifies all secrets of the agent.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from agent.errors import CredentialsError

logger = logging.getLogger(__name__)

ENV_DIR = "CREDENTIALS_DIRECTORY"
BUNDLE_NAME = "evidence-agent"


@dataclass(frozen=True)
class MqttCredentials:
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # never print the password, not even in a traceback
        hidden = "***" if self.password else None
        return f"MqttCredentials(username={self.username!r}, password={hidden})"


def parse_kv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; optional quotes removed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(
            f"cannot read credentials file {path}: {exc.strerror} "
            "(check credentials.file and the file's owner/mode)"
        ) from None
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise CredentialsError(f"{path}: line {n}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def _warn_if_readable(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "credentials file %s is readable by group/others (mode %o); chmod 600 it",
            path,
            stat.S_IMODE(mode),
        )


def _single(directory: Path, name: str) -> str | None:
    path = directory / name
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise CredentialsError(f"cannot read credential {path}: {exc.strerror}") from None


def load(credentials_file: Path | None, environ: dict[str, str] | None = None) -> MqttCredentials:
    """The MQTT user name and password (either may be None: anonymous access)."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    sources: list[dict[str, str]] = []
    cred_dir = env.get(ENV_DIR)
    if cred_dir:
        d = Path(cred_dir)
        single = {"MQTT_USERNAME": _single(d, "mqtt_username")}
        single["MQTT_PASSWORD"] = _single(d, "mqtt_password")
        sources.append({k: v for k, v in single.items() if v is not None})
        if (d / BUNDLE_NAME).is_file():
            sources.append(parse_kv(d / BUNDLE_NAME))
    if credentials_file is not None:
        if not credentials_file.is_file():
            raise CredentialsError(
                f"credentials.file {credentials_file} does not exist (create it with "
                "MQTT_USERNAME=... and MQTT_PASSWORD=... lines, mode 0600, or unset the key)"
            )
        _warn_if_readable(credentials_file)
        sources.append(parse_kv(credentials_file))
    for src in sources:
        for key in ("MQTT_USERNAME", "MQTT_PASSWORD"):
            if key not in found and src.get(key):
                found[key] = src[key]
    creds = MqttCredentials(found.get("MQTT_USERNAME"), found.get("MQTT_PASSWORD"))
    if creds.password and not creds.username:
        raise CredentialsError(
            "MQTT_PASSWORD is set but MQTT_USERNAME is not; MQTT sends a password only "
            "with a user name (add MQTT_USERNAME to the credentials)"
        )
    return creds
