"""The `[station]` and `[credentials]` config sections: who the station is, where it keeps data."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from agent.config.base import Section


def _default_station_id() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "station"


def _default_data_dir() -> Path:
    # systemd's StateDirectory= hands us the right place; root gets the FHS path; a developer
    # running without config gets a per-user directory so nothing needs sudo.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/evidence-agent")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "evidence-agent"


class StationConfig(Section):
    id: str = Field(
        default_factory=_default_station_id,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Station id used in MQTT topics and the custody log (default: host name).",
    )
    role: Literal["dock", "interview"] = Field("dock", description="dock or interview room.")
    timezone: str = Field(
        "Asia/Shanghai", description="IANA zone of recorder clocks and FAT/exFAT mtimes."
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Ledger, keys, spool and local archive live here; the only place the "
        "agent writes to (besides releasing recordings and device commands).",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name)") from exc
        return v


class CredentialsConfig(Section):
    file: Path | None = Field(
        None,
        description="KEY=VALUE secrets file (mode 0600); $CREDENTIALS_DIRECTORY is read too.",
    )
