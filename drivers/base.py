"""The small interface every hardware driver implements, and what drivers report back.

A driver finds recorders on its transport (USB, serial, mounted volumes), identifies them,
reads their status, may set their clock and switch them to mass storage so their volume
appears under a mount root. The daemon runs each driver in its own supervised thread, so a
driver that raises only takes down itself, and only for a back-off period.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class DriverSettings(BaseModel):
    """Base of every driver's config table (`[[drivers]]` with `type = "<name>"`)."""

    model_config = ConfigDict(extra="forbid")
    type: str
    name: str | None = Field(
        None, description="Name in logs and events (default: the type and its position)."
    )
    poll_seconds: float = Field(
        1.0, gt=0, le=3600, description="How often the transport is scanned for recorders."
    )

    def resolve_paths(self, base: Path) -> None:
        """Make relative paths in this table relative to the config file's directory."""


def _no_secret(name: str) -> str | None:
    return None


@dataclass
class DriverEnv:
    """What a driver may know of the station: its time zone and a secret lookup."""

    timezone: str = "Asia/Shanghai"
    secret: Callable[[str], str | None] = _no_secret


@dataclass
class DeviceIdentity:
    """Who a recorder says it is. `source` says where the serial came from."""

    vendor: str
    serial: str
    source: str  # "usb", "serial", "devinfo", "filename", "label"
    officer_id: str | None = None
    officer_name: str | None = None
    unit_id: str | None = None
    unit_name: str | None = None
    model: str | None = None
    port: str | None = None  # bay / USB path / tty
    firmware: str | None = None
    # Problems that do not stop the device (e.g. undecodable bytes in a name, shown escaped).
    notes: list[str] = field(default_factory=list)


@dataclass
class DeviceStatus:
    battery_pct: int | None = None
    charging: bool | None = None
    clock: datetime | None = None  # the recorder's clock, aware (station tz) when known
    extra: dict[str, object] = field(default_factory=dict)


class DeviceError(Exception):
    """A device-specific failure; the message names the device and what to do.

    `gone`: the device disappeared (unplugged, re-enumerated) - nothing more can be asked of
    this handle. `code` is a short machine-readable reason for events (timeout, garbled,
    disconnected, auth, unsupported, busy, refused).
    """

    def __init__(self, message: str, *, code: str = "error", gone: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.gone = gone


class DeviceAuthError(DeviceError):
    """The recorder refused the admin password. Never retried with the same password."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="auth")


class Driver(abc.ABC):
    """One transport. Methods block; the daemon calls them from the driver's own thread."""

    type_name: ClassVar[str]

    def __init__(self, settings: DriverSettings, env: DriverEnv | None = None) -> None:
        self.settings = settings
        self.env = env or DriverEnv()

    @property
    def label(self) -> str:
        return self.settings.name or self.type_name

    @abc.abstractmethod
    def discover(self) -> list[str]:
        """Handles (opaque strings) of recorders currently attached on this transport."""

    @abc.abstractmethod
    def identify(self, handle: str) -> DeviceIdentity: ...

    def status(self, handle: str) -> DeviceStatus:
        return DeviceStatus()

    def set_clock(self, handle: str, when: datetime) -> None:
        """Set the recorder's clock to `when` (aware; drivers convert to the recorder's zone)."""
        raise DeviceError(
            f"{self.label} {handle}: setting the clock is not supported", code="unsupported"
        )

    def secret_fingerprint(self) -> str | None:
        """Changes when the credential this driver logs in with changes (never the secret)."""
        return None

    def storage_mode(self, handle: str) -> None:
        """Switch the recorder so its volume is exposed (no-op for mass storage)."""

    def forget(self, handle: str) -> None:
        """The handle disappeared from discover(): drop what is cached for it."""

    def close(self) -> None:
        """Release the transport (called on stop)."""
