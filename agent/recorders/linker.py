"""Which physical recorder is behind a volume, and which serials are attached right now.

A recorder identified over USB or serial switches to mass storage and its volume appears a
moment later under a mount root, named by the OS after its label or serial. The volume gets
the driver's identity (DESIGN.md: the driver's word comes first) when the driver saw that
recorder recently and the volume's own evidence points at it: the device info file or file
names carry the same serial, or the mount point is named after it. A recorder once identified
by a driver stays linked through the ledger, so a restart between switch and mount is fine.

The linker also refuses two attached devices that report the same serial: evidence of two
recorders must never be merged under one identity.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from drivers.base import DeviceIdentity

logger = logging.getLogger(__name__)

RECENT_SECONDS = 30 * 60.0  # a volume may take a while to mount after the switch


@dataclass
class _Seen:
    key: tuple[str, str]  # (driver label, handle)
    ident: DeviceIdentity
    at: float
    attached: bool = True


class Linker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_serial: dict[str, _Seen] = {}

    def attach(self, driver: str, handle: str, ident: DeviceIdentity) -> str | None:
        """Note an attached recorder; returns who else claims its serial (a conflict), or None."""
        key = (driver, handle)
        with self._lock:
            other = self._by_serial.get(ident.serial)
            if other is not None and other.attached and other.key != key:
                return f"{other.key[0]} at {other.key[1]}"
            self._by_serial[ident.serial] = _Seen(key, ident, time.monotonic())
        return None

    def detach(self, driver: str, handle: str) -> None:
        with self._lock:
            for seen in self._by_serial.values():
                if seen.key == (driver, handle):
                    seen.attached = False
                    seen.at = time.monotonic()

    def _recent(self, serial: str) -> DeviceIdentity | None:
        with self._lock:
            seen = self._by_serial.get(serial)
            if seen is None:
                return None
            if not seen.attached and time.monotonic() - seen.at > RECENT_SECONDS:
                del self._by_serial[serial]
                return None
            return seen.ident

    def link(self, conn: sqlite3.Connection, root: Path, vol: DeviceIdentity) -> DeviceIdentity:
        """The identity to register the volume under (the volume's own if nothing links)."""
        if vol.source in ("usb", "serial"):
            return vol
        driver_ident = self._recent(vol.serial) or self._recent(root.name)
        if driver_ident is None:
            driver_ident = _from_ledger(conn, vol.serial) or _from_ledger(conn, root.name)
        if driver_ident is None:
            return vol
        if vol.serial != driver_ident.serial and vol.source == "devinfo":
            logger.warning(
                "volume %s: device info file says serial %s, but it is mounted as %s, which "
                "the %s driver identified; using the driver's identity",
                root,
                vol.serial,
                driver_ident.serial,
                driver_ident.source,
            )
        logger.info(
            "volume %s linked to %s recorder %s/%s (volume said %s from %s)",
            root,
            driver_ident.source,
            driver_ident.vendor,
            driver_ident.serial,
            vol.serial,
            vol.source,
        )
        return replace(
            driver_ident,
            officer_id=driver_ident.officer_id or vol.officer_id,
            officer_name=driver_ident.officer_name or vol.officer_name,
            unit_id=driver_ident.unit_id or vol.unit_id,
            unit_name=driver_ident.unit_name or vol.unit_name,
            model=driver_ident.model or vol.model,
            notes=[],
        )


def _from_ledger(conn: sqlite3.Connection, serial: str) -> DeviceIdentity | None:
    row = conn.execute(
        "SELECT * FROM devices WHERE serial=? AND serial_source IN ('usb','serial')"
        " ORDER BY last_seen DESC LIMIT 1",
        (serial,),
    ).fetchone()
    if row is None:
        return None
    return DeviceIdentity(
        vendor=row["vendor"],
        serial=row["serial"],
        source=row["serial_source"],
        officer_id=row["officer_id"],
        officer_name=row["officer_name"],
        unit_id=row["unit_id"],
        unit_name=row["unit_name"],
        model=row["model"],
        port=row["port"],
    )
