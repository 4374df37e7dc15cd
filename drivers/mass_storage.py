"""Mass-storage recorders: the volume itself is the device (found by the agent's mount watch).

This driver exists so configs can name it and so identity read from a volume (device info file,
file names, label) goes through the same DeviceIdentity as USB and serial identities.
"""

from __future__ import annotations

from typing import Literal

from drivers.base import DeviceError, DeviceIdentity, Driver, DriverSettings


class MassStorageSettings(DriverSettings):
    type: Literal["mass_storage"] = "mass_storage"


class MassStorageDriver(Driver):
    type_name = "mass_storage"

    def discover(self) -> list[str]:
        return []  # volumes are found by the mount-root watcher, not by probing a bus

    def identify(self, handle: str) -> DeviceIdentity:
        # Never reached: discover() names no handles. A volume's identity (device info file,
        # file names, label) is read by the agent's volume reader, which owns that layout;
        # importing it here would make drivers/ depend on agent/.
        raise DeviceError(f"{handle}: mass-storage volumes are identified by the mount watch")
