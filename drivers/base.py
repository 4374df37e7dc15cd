"""The small interface every hardware driver implements, and what drivers report back.

A driver finds recorders on its transport (USB, serial, mounted volumes), identifies them,
reads their status, may set their clock and switch them to mass storage so their volume
appears under a mount root. The daemon runs each driver in its own supervised thread, so a
driver that raises only takes down itself, and only for a back-off period.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class DriverSettings(BaseModel):
    """Base of every driver's config table (`[[drivers]]` with `type = "<name>"`)."""

    model_config = ConfigDict(extra="forbid")
    type: str


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


@dataclass
class DeviceStatus:
    battery_pct: int | None = None
    charging: bool | None = None
    clock: datetime | None = None  # the recorder's clock, aware (station tz) when known
    extra: dict[str, object] = field(default_factory=dict)


class DeviceError(Exception):
    """A device-specific failure; the message names the device and what to do."""


class Driver(abc.ABC):
    """One transport. Methods block; the daemon calls them from the driver's own thread."""

    type_name: ClassVar[str]

    def __init__(self, settings: DriverSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    def discover(self) -> list[str]:
        """Handles (opaque strings) of recorders currently attached on this transport."""

    @abc.abstractmethod
    def identify(self, handle: str) -> DeviceIdentity: ...

    def status(self, handle: str) -> DeviceStatus:
        return DeviceStatus()

    def set_clock(self, handle: str, when: datetime) -> None:
        raise DeviceError(f"{self.type_name}: setting the clock is not supported")

    def storage_mode(self, handle: str) -> None:
        """Switch the recorder so its volume is exposed (no-op for mass storage)."""

    def close(self) -> None:
        """Release the transport (called on stop)."""
