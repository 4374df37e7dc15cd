"""The explicit driver registry: config `type` → (settings model, driver class)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from drivers.base import Driver, DriverSettings
from drivers.mass_storage import MassStorageDriver, MassStorageSettings

REGISTRY: dict[str, tuple[type[DriverSettings], type[Driver]]] = {
    "mass_storage": (MassStorageSettings, MassStorageDriver),
}

# A new driver adds its settings class to this union and its entry to REGISTRY.
DriverConfig = Annotated[MassStorageSettings, Field(discriminator="type")]


def create(settings: DriverSettings) -> Driver:
    _, cls = REGISTRY[settings.type]
    return cls(settings)
