"""The explicit driver registry: config `type` → (settings model, driver class)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from drivers.base import Driver, DriverEnv, DriverSettings
from drivers.mass_storage import MassStorageDriver, MassStorageSettings
from drivers.serial_port import SerialDriver, SerialSettings
from drivers.zfy_usb import ZfyUsbDriver, ZfyUsbSettings

REGISTRY: dict[str, tuple[type[DriverSettings], type[Driver]]] = {
    "mass_storage": (MassStorageSettings, MassStorageDriver),
    "zfy_usb": (ZfyUsbSettings, ZfyUsbDriver),
    "serial": (SerialSettings, SerialDriver),
}

# A new driver adds its settings class to this union and its entry to REGISTRY.
DriverConfig = Annotated[
    MassStorageSettings | ZfyUsbSettings | SerialSettings, Field(discriminator="type")
]


def create(settings: DriverSettings, env: DriverEnv | None = None) -> Driver:
    _, cls = REGISTRY[settings.type]
    return cls(settings, env)
