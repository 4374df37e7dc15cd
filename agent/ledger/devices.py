"""The one writer of `devices` rows: a recorder docks, undocks, reports its state or an error,
and is listed by the inventory.

Both ways a recorder arrives — a volume mounted under `detect.mount_roots` and a driver that
sees it on its control port — dock it through `dock()`, so a dock is recorded and announced
once (`recorder.docked`, with the same fields whichever came first) and the second sighting
only completes it (the volume path fills in `volume`).

A recorder's unit has one owner: the inventory when it lists the recorder, otherwise what the
recorder itself reports. `unit_id` always holds that effective unit (every reader, the local and
the fleet ratio included, counts a recorder under it); the recorder's own claim is kept in
`reported_unit_id`, and a claim that differs from the inventory is flagged (`unit_reported` in
status and on MQTT), never counted as a second unit.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from agent.core import clock
from agent.ledger import custody, events
from drivers.base import DeviceIdentity

logger = logging.getLogger(__name__)

_FIND = "SELECT * FROM devices WHERE vendor = ? AND serial = ?"


@dataclass(frozen=True)
class Docked:
    """What `dock()` did: the row, and whether this sighting began a new dock."""

    device_id: int
    newly_docked: bool


def row_for(
    conn: sqlite3.Connection, ident: DeviceIdentity, registered: bool, at: str
) -> sqlite3.Row:
    """The recorder's devices row, created (with its custody event) on first sight."""
    row = conn.execute(_FIND, (ident.vendor, ident.serial)).fetchone()
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
    return conn.execute(_FIND, (ident.vendor, ident.serial)).fetchone()


def _begins_dock(row: sqlite3.Row, volume: str | None) -> bool:
    """A sighting starts a new dock unless the recorder is docked already on this volume (or
    on none yet: a driver reported it first and its volume now completes that dock)."""
    if not row["docked"]:
        return True
    return volume is not None and row["volume"] not in (None, volume)


def dock(
    conn: sqlite3.Connection,
    ident: DeviceIdentity,
    *,
    registered: bool,
    inventory_status: str | None,
    quarantine: bool,
    volume: str | None = None,
    driver: str | None = None,
    at: str | None = None,
) -> Docked:
    """Record that the recorder is attached (inside the caller's transaction)."""
    at = at or clock.now_iso()
    row = row_for(conn, ident, registered, at)
    newly = _begins_dock(row, volume)
    conn.execute(
        "UPDATE devices SET serial_source=?, model=COALESCE(?, model),"
        " firmware=COALESCE(?, firmware), officer_id=COALESCE(?, officer_id),"
        " officer_name=COALESCE(?, officer_name),"
        " reported_unit_id=COALESCE(?, reported_unit_id),"
        " unit_id=COALESCE(inventory_unit_id, ?, unit_id), unit_name=COALESCE(?, unit_name),"
        " inventory_status=?, registered=?, port=COALESCE(?, port),"
        " driver=COALESCE(?, driver), docked=1, last_seen=?,"
        " volume=CASE WHEN ? IS NOT NULL THEN ? WHEN ? THEN NULL ELSE volume END,"
        " last_docked=CASE WHEN ? THEN ? ELSE last_docked END WHERE id=?",
        (
            ident.source,
            ident.model,
            ident.firmware,
            ident.officer_id,
            ident.officer_name,
            ident.unit_id,
            ident.unit_id,
            ident.unit_name,
            inventory_status,
            int(registered),
            ident.port,
            driver,
            at,
            volume,
            volume,
            int(newly),
            int(newly),
            at,
            row["id"],
        ),
    )
    if newly:
        _announce(conn, ident, registered, quarantine, volume, driver)
    return Docked(int(row["id"]), newly)


def _announce(
    conn: sqlite3.Connection,
    ident: DeviceIdentity,
    registered: bool,
    quarantine: bool,
    volume: str | None,
    driver: str | None,
) -> None:
    events.emit(
        conn,
        "recorder.docked",
        serial=ident.serial,
        vendor=ident.vendor,
        port=ident.port,
        driver=driver,
        volume=volume,
        serial_source=ident.source,
        registered=registered,
    )
    if quarantine:
        events.emit(
            conn, "recorder.unknown", serial=ident.serial, vendor=ident.vendor, port=ident.port
        )
    inv = conn.execute(
        "SELECT inventory_unit_id FROM devices WHERE vendor=? AND serial=?",
        (ident.vendor, ident.serial),
    ).fetchone()
    if ident.unit_id and inv["inventory_unit_id"] not in (None, ident.unit_id):
        logger.warning(
            "recorder %s reports unit %s but the inventory lists it under %s; it is counted"
            " under the inventory's unit (correct the recorder's settings or the inventory)",
            ident.serial,
            ident.unit_id,
            inv["inventory_unit_id"],
        )


def _undock_row(conn: sqlite3.Connection, row: sqlite3.Row) -> None:
    conn.execute(
        "UPDATE devices SET docked = 0, last_undocked = ? WHERE id = ?",
        (clock.now_iso(), row["id"]),
    )
    events.emit(conn, "recorder.undocked", serial=row["serial"], vendor=row["vendor"])


def undock_volume(conn: sqlite3.Connection, volume: str) -> list[str]:
    """The recorders docked on `volume` are gone with it; their serials."""
    rows = conn.execute(
        "SELECT id, serial, vendor FROM devices WHERE volume = ? AND docked = 1", (volume,)
    ).fetchall()
    for r in rows:
        _undock_row(conn, r)
    return [str(r["serial"]) for r in rows]


def undock_unmounted(conn: sqlite3.Connection, vendor: str, serial: str) -> bool:
    """A recorder left its control port without exposing a volume: it is no longer docked."""
    row = conn.execute(
        "SELECT id, serial, vendor FROM devices WHERE vendor=? AND serial=? AND docked=1"
        " AND volume IS NULL",
        (vendor, serial),
    ).fetchone()
    if row is None:
        return False
    _undock_row(conn, row)
    return True


def update_status(
    conn: sqlite3.Connection, device_id: int, battery_pct: int | None, charging: bool | None
) -> None:
    conn.execute(
        "UPDATE devices SET battery_pct=COALESCE(?, battery_pct),"
        " charging=COALESCE(?, charging), last_seen=? WHERE id=?",
        (battery_pct, None if charging is None else int(charging), clock.now_iso(), device_id),
    )


def record_error(
    conn: sqlite3.Connection, vendor: str, serial: str, message: str, auth: bool
) -> None:
    conn.execute(
        "UPDATE devices SET last_error=?, last_error_at=?,"
        " login_failures=login_failures + ? WHERE vendor=? AND serial=?",
        (message, clock.now_iso(), int(auth), vendor, serial),
    )


def mark_refused(conn: sqlite3.Connection, device_id: int, reasons: list[str]) -> None:
    """Record why a recorder's identity was refused (`agent.core.identifiers` gives the verdict)."""
    if not reasons:
        return
    row = conn.execute("SELECT identity_refused FROM devices WHERE id=?", (device_id,)).fetchone()
    known = row[0].split("; ") if row is not None and row[0] else []
    merged = known + [r for r in reasons if r not in known]  # every source's refusal is kept
    conn.execute("UPDATE devices SET identity_refused=? WHERE id=?", ("; ".join(merged), device_id))


def report_error(
    conn: sqlite3.Connection,
    *,
    driver: str | None,
    handle: str | None,
    serial: str | None,
    stage: str,
    code: str,
    message: str,
    keep_on: str | None = None,
    auth: bool = False,
    **fields: object,
) -> None:
    """The one `recorder.error`: a driver that cannot start, a device error, a stalled read.

    With `keep_on` (the recorder's vendor: its ledger row is known) the error is also kept on
    that row, `auth` counting a failed login; `fields` are extra fields of the MQTT event.
    """
    if keep_on is not None and serial is not None:
        record_error(conn, keep_on, serial, message, auth)
    events.emit(
        conn,
        "recorder.error",
        driver=driver,
        handle=handle,
        serial=serial,
        stage=stage,
        code=code,
        message=message,
        **fields,
    )


def list_in_inventory(
    conn: sqlite3.Connection,
    vendor: str,
    serial: str,
    status: str,
    unit_id: str | None,
    officer_id: str | None,
    at: str,
) -> int:
    """The inventory lists this recorder: it owns its status and unit from now on."""
    conn.execute(
        "INSERT INTO devices(vendor, serial, serial_source, first_seen, docked,"
        " registered) VALUES(?,?,'inventory',?,0,1) ON CONFLICT(vendor, serial)"
        " DO NOTHING",
        (vendor, serial, at),
    )
    row = conn.execute(_FIND, (vendor, serial)).fetchone()
    conn.execute(
        "UPDATE devices SET registered=1, inventory_status=?, inventory_unit_id=?,"
        " inventory_officer_id=?, unit_id=COALESCE(?, reported_unit_id, unit_id),"
        " officer_id=COALESCE(officer_id, ?) WHERE id=?",
        (status, unit_id, officer_id, unit_id, officer_id, row["id"]),
    )
    return int(row["id"])


def unlist_from_inventory(conn: sqlite3.Connection, device_id: int) -> None:
    """The inventory no longer lists this recorder: its own unit claim applies again."""
    conn.execute(
        "UPDATE devices SET registered=0, inventory_status=NULL, inventory_unit_id=NULL,"
        " unit_id=COALESCE(reported_unit_id, unit_id) WHERE id=?",
        (device_id,),
    )


def set_clock_offset(
    conn: sqlite3.Connection, device_id: int, offset: float, at: str | None
) -> None:
    """The recorder's clock offset as measured at dock (agent.recorders.recclock)."""
    conn.execute(
        "UPDATE devices SET clock_offset_s=?, clock_checked_at=? WHERE id=?",
        (offset, at, device_id),
    )


def set_clock_set_at(conn: sqlite3.Connection, device_id: int, at: str | None) -> None:
    """When the agent last set the recorder's clock (agent.recorders.recclock)."""
    conn.execute("UPDATE devices SET clock_set_at=? WHERE id=?", (at, device_id))
