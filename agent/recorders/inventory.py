"""Device inventory in the ledger: sightings by drivers, inventory import, vendor matching.

A recorder is (vendor, serial). Drivers, volumes and the inventory file may spell the vendor
differently ("ZFY" / "zfy"), so every writer first maps a sighting onto the existing row
(`canonical_vendor`). The inventory file is imported into the devices table whenever it
changes (one custody event per import, with the file's SHA-256); every sighting updates
battery, clock, port and last-seen, and emits `recorder.docked` / `recorder.unknown` once
per dock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from agent.core import clock
from agent.ledger import custody, devices
from drivers.base import DeviceIdentity, DeviceStatus

if TYPE_CHECKING:
    from agent.rules.roster import InventoryItem
    from agent.station.context import Context

logger = logging.getLogger(__name__)

INVENTORY_KV = "inventory.imported_sha256"


def canonical_vendor(conn: sqlite3.Connection, vendor: str, serial: str) -> str:
    """The vendor spelling already in the ledger for this recorder, else `vendor`."""
    rows = conn.execute(
        "SELECT vendor FROM devices WHERE serial = ? AND lower(vendor) = lower(?)"
        " ORDER BY vendor = ? DESC, id LIMIT 1",
        (serial, vendor, vendor),
    ).fetchone()
    return str(rows["vendor"]) if rows else vendor


@dataclass
class Sighting:
    device_id: int
    vendor: str
    newly_docked: bool
    registered: bool
    quarantine: bool


def sight(
    conn: sqlite3.Connection,
    ctx: Context,
    ident: DeviceIdentity,
    status: DeviceStatus | None,
    driver: str,
    when: datetime | None = None,
) -> Sighting:
    """Record that a driver sees this recorder attached (at `when`, default now; inside the
    caller's tx). A clock offset measured at `when` belongs to this dock."""
    vendor = canonical_vendor(conn, ident.vendor, ident.serial)
    ident = replace(ident, vendor=vendor)
    registered, inv_status, quarantine = ctx.inventory_status(vendor, ident.serial)
    at = clock.iso(when) if when is not None else clock.now_iso()
    docked = devices.dock(
        conn,
        ident,
        registered=registered,
        inventory_status=inv_status,
        quarantine=quarantine,
        driver=driver,
        at=at,
    )
    if status is not None:
        update_status(conn, docked.device_id, status)
    return Sighting(docked.device_id, vendor, docked.newly_docked, registered, quarantine)


def update_status(conn: sqlite3.Connection, device_id: int, status: DeviceStatus) -> None:
    devices.update_status(conn, device_id, status.battery_pct, status.charging)


def _import_item(conn: sqlite3.Connection, item: InventoryItem, at: str) -> int:
    vendor = canonical_vendor(conn, item.vendor, item.serial)
    return devices.list_in_inventory(
        conn, vendor, item.serial, str(item.status), item.unit_id, item.officer_id, at
    )


def import_inventory(ctx: Context, force: bool = False) -> int | None:
    """Bring the devices table in line with the inventory; None if nothing changed.

    The inventory comes from `ctx.rosters` (the last good file content, also across
    processes); it is imported when its content differs from the last import."""
    if ctx.cfg.inventory.file is None:
        return None
    items = ctx.rosters.inventory()
    if items is None:
        return None  # no good inventory yet: nothing to import (everyone is quarantined)
    body = json.dumps([asdict(i) for i in items], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    if not force and ctx.ledger.get_kv(INVENTORY_KV) == digest:
        return None
    at = clock.now_iso()
    with ctx.ledger.tx() as conn:
        listed = {
            _import_item(conn, item, at) for item in items if item.vendor not in ("*", "")
        }  # a wildcard entry matches sightings; it names no single device
        dropped = [
            r
            for r in conn.execute("SELECT id, vendor, serial FROM devices WHERE registered=1")
            if int(r["id"]) not in listed and not ctx.inventory_status(r["vendor"], r["serial"])[0]
        ]
        for r in dropped:
            devices.unlist_from_inventory(conn, int(r["id"]))
        custody.append(
            conn,
            "inventory.imported",
            {
                "file": str(ctx.cfg.inventory.file),
                "items_sha256": digest,
                "items": len(items),
                "removed": len(dropped),
            },
        )
        ctx.ledger.set_kv(conn, INVENTORY_KV, digest)
    logger.info("inventory %s imported: %d recorders", ctx.cfg.inventory.file, len(items))
    return len(items)
