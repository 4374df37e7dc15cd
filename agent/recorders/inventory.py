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
from agent.ledger import custody, events
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
    row = _row(conn, ident, registered, at)
    newly = not row["docked"]
    conn.execute(
        "UPDATE devices SET serial_source=?, model=COALESCE(?, model),"
        " firmware=COALESCE(?, firmware), officer_id=COALESCE(?, officer_id),"
        " officer_name=COALESCE(?, officer_name), unit_id=COALESCE(?, unit_id),"
        " unit_name=COALESCE(?, unit_name), inventory_status=?, registered=?, port=?,"
        " driver=?, last_seen=?, docked=1,"
        " volume=CASE WHEN docked THEN volume ELSE NULL END,"
        " last_docked=CASE WHEN docked THEN last_docked ELSE ? END WHERE id=?",
        (
            ident.source,
            ident.model,
            ident.firmware,
            ident.officer_id,
            ident.officer_name,
            ident.unit_id,
            ident.unit_name,
            inv_status,
            int(registered),
            ident.port,
            driver,
            at,
            at,
            row["id"],
        ),
    )
    if status is not None:
        update_status(conn, int(row["id"]), status)
    if newly:
        events.emit(
            conn,
            "recorder.docked",
            serial=ident.serial,
            vendor=vendor,
            port=ident.port,
            driver=driver,
            serial_source=ident.source,
            registered=registered,
        )
        if quarantine:
            events.emit(
                conn, "recorder.unknown", serial=ident.serial, vendor=vendor, port=ident.port
            )
    return Sighting(int(row["id"]), vendor, newly, registered, quarantine)


def _row(
    conn: sqlite3.Connection, ident: DeviceIdentity, registered: bool, at: str | None
) -> sqlite3.Row:
    """The recorder's devices row, created (with its custody event) on first sight."""
    find = "SELECT * FROM devices WHERE vendor = ? AND serial = ?"
    row = conn.execute(find, (ident.vendor, ident.serial)).fetchone()
    if row is not None:
        return row
    conn.execute(
        "INSERT INTO devices(vendor, serial, serial_source, first_seen, docked, registered)"
        " VALUES(?,?,?,?,0,?)",
        (ident.vendor, ident.serial, ident.source, at, int(registered)),
    )
    custody.append(
        conn,
        "device.registered" if registered else "device.first_seen",
        {"vendor": ident.vendor, "serial": ident.serial, "serial_source": ident.source},
    )
    return conn.execute(find, (ident.vendor, ident.serial)).fetchone()


def update_status(conn: sqlite3.Connection, device_id: int, status: DeviceStatus) -> None:
    conn.execute(
        "UPDATE devices SET battery_pct=COALESCE(?, battery_pct),"
        " charging=COALESCE(?, charging), last_seen=? WHERE id=?",
        (
            status.battery_pct,
            None if status.charging is None else int(status.charging),
            clock.now_iso(),
            device_id,
        ),
    )


def undock_unmounted(conn: sqlite3.Connection, vendor: str, serial: str) -> bool:
    """A recorder left its control port without exposing a volume: it is no longer docked."""
    row = conn.execute(
        "SELECT id FROM devices WHERE vendor=? AND serial=? AND docked=1 AND volume IS NULL",
        (vendor, serial),
    ).fetchone()
    if row is None:
        return False
    conn.execute("UPDATE devices SET docked=0 WHERE id=?", (row["id"],))
    events.emit(conn, "recorder.undocked", serial=serial, vendor=vendor)
    return True


def record_error(
    conn: sqlite3.Connection, vendor: str, serial: str, message: str, auth: bool
) -> None:
    conn.execute(
        "UPDATE devices SET last_error=?, last_error_at=?,"
        " login_failures=login_failures + ? WHERE vendor=? AND serial=?",
        (message, clock.now_iso(), int(auth), vendor, serial),
    )


def _import_item(conn: sqlite3.Connection, item: InventoryItem, at: str) -> int:
    vendor = canonical_vendor(conn, item.vendor, item.serial)
    conn.execute(
        "INSERT INTO devices(vendor, serial, serial_source, first_seen, docked,"
        " registered) VALUES(?,?,'inventory',?,0,1) ON CONFLICT(vendor, serial)"
        " DO NOTHING",
        (vendor, item.serial, at),
    )
    row = conn.execute(
        "SELECT id FROM devices WHERE vendor=? AND serial=?", (vendor, item.serial)
    ).fetchone()
    conn.execute(
        "UPDATE devices SET registered=1, inventory_status=?, inventory_unit_id=?,"
        " inventory_officer_id=?, unit_id=COALESCE(unit_id, ?),"
        " officer_id=COALESCE(officer_id, ?) WHERE id=?",
        (str(item.status), item.unit_id, item.officer_id, item.unit_id, item.officer_id,
         row["id"]),
    )  # fmt: skip
    return int(row["id"])


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
            conn.execute(
                "UPDATE devices SET registered=0, inventory_status=NULL WHERE id=?", (r["id"],)
            )
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
