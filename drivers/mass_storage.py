"""Mass-storage recorders: the volume itself is the device (detection lives in agent.recorders.detect).

This driver exists so configs can name it and so identity read from a volume (device info file,
file names, label) goes through the same DeviceIdentity as USB and serial identities.
"""

from __future__ import annotations

from typing import Literal

from drivers.base import DeviceIdentity, Driver, DriverSettings


class MassStorageSettings(DriverSettings):
    type: Literal["mass_storage"] = "mass_storage"


class MassStorageDriver(Driver):
    type_name = "mass_storage"

    def discover(self) -> list[str]:
        return []  # volumes are found by the mount-root watcher, not by probing a bus

    def identify(self, handle: str) -> DeviceIdentity:
        from agent.recorders.volume import identify_volume  # lazy: keeps drivers importable alone

        return identify_volume(handle)
