"""MQTT user name and password from the credentials, never from the TOML.

Looked up through agent.station.credentials (first found wins): `$CREDENTIALS_DIRECTORY/mqtt_username`
and `.../mqtt_password` (systemd `LoadCredential=`), else `MQTT_USERNAME=` / `MQTT_PASSWORD=`
lines of `$CREDENTIALS_DIRECTORY/evidence-agent`, else of `credentials.file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.core.errors import CredentialsError
from agent.station.credentials import Credentials


@dataclass(frozen=True)
class MqttCredentials:
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # never print the password, not even in a traceback
        hidden = "***" if self.password else None
        return f"MqttCredentials(username={self.username!r}, password={hidden})"


def load(credentials_file: Path | None, environ: dict[str, str] | None = None) -> MqttCredentials:
    """The MQTT user name and password (either may be None: anonymous access)."""
    creds = Credentials(credentials_file, environ)
    username = creds.get("mqtt_username") or creds.get("MQTT_USERNAME") or None
    password = creds.get("mqtt_password") or creds.get("MQTT_PASSWORD") or None
    if password and not username:
        raise CredentialsError(
            "MQTT_PASSWORD is set but MQTT_USERNAME is not; MQTT sends a password only "
            "with a user name (add MQTT_USERNAME to the credentials)"
        )
    return MqttCredentials(username, password)
