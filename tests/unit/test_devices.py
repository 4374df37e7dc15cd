"""One dock, one undock and one unit rule for `devices` rows (issue 18), on a real ledger."""

from __future__ import annotations

import json
from pathlib import Path

from agent.ledger import devices
from agent.ledger.db import Ledger
from drivers.base import DeviceIdentity


def _events(ledger: Ledger, kind: str) -> list[dict]:  # type: ignore[type-arg]
    rows = ledger.query("SELECT payload FROM outbox WHERE type = ? ORDER BY rowid", (kind,))
    return [json.loads(r["payload"]) for r in rows]


def _dock(ledger: Ledger, ident: DeviceIdentity, **kw) -> devices.Docked:  # type: ignore[no-untyped-def]
    with ledger.tx() as conn:
        return devices.dock(
            conn, ident, registered=True, inventory_status="in_service", quarantine=False, **kw
        )


def test_driver_then_volume_is_one_dock_announced_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ident = DeviceIdentity("ZFY", "ZFY0001", "devinfo", port="1-1")
    first = _dock(ledger, ident, driver="zfy_usb")
    again = _dock(ledger, ident, volume="/media/ZFY0001")
    assert first.newly_docked and not again.newly_docked
    assert first.device_id == again.device_id
    docked = _events(ledger, "recorder.docked")
    assert len(docked) == 1
    assert {k: docked[0][k] for k in ("serial", "vendor", "port", "driver", "registered")} == {
        "serial": "ZFY0001",
        "vendor": "ZFY",
        "port": "1-1",
        "driver": "zfy_usb",
        "registered": True,
    }
    row = ledger.query("SELECT * FROM devices")[0]
    assert row["docked"] == 1 and row["volume"] == "/media/ZFY0001"
    with ledger.tx() as conn:
        assert devices.undock_volume(conn, "/media/ZFY0001") == ["ZFY0001"]
    undocked = _events(ledger, "recorder.undocked")
    assert [(e["serial"], e["vendor"]) for e in undocked] == [("ZFY0001", "ZFY")]
    # Docking again on another volume is a new dock.
    assert _dock(ledger, ident, volume="/media/ZFY0001").newly_docked


def test_volume_then_driver_and_the_same_fields(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ident = DeviceIdentity("ZFY", "ZFY0002", "label")
    assert _dock(ledger, ident, volume="/media/A").newly_docked
    assert not _dock(ledger, ident, driver="mass_storage").newly_docked
    (event,) = _events(ledger, "recorder.docked")
    assert set(event) >= {"serial", "vendor", "port", "driver", "volume", "serial_source"}
    assert event["volume"] == "/media/A" and event["driver"] is None


def test_the_inventory_owns_the_unit_and_a_dropped_listing_gives_it_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ident = DeviceIdentity("ZFY", "ZFY0003", "devinfo", unit_id="U9")
    _dock(ledger, ident, driver="zfy_usb")
    with ledger.tx() as conn:
        device_id = devices.list_in_inventory(conn, "ZFY", "ZFY0003", "in_service", "U1", None, "t")
    row = ledger.query("SELECT unit_id, reported_unit_id FROM devices")[0]
    assert (row["unit_id"], row["reported_unit_id"]) == ("U1", "U9")
    _dock(ledger, ident, volume="/media/B")  # the recorder repeats its claim at the next dock
    row = ledger.query("SELECT unit_id, reported_unit_id FROM devices")[0]
    assert (row["unit_id"], row["reported_unit_id"]) == ("U1", "U9")
    with ledger.tx() as conn:
        devices.unlist_from_inventory(conn, device_id)
    row = ledger.query("SELECT unit_id FROM devices")[0]
    assert row["unit_id"] == "U9"
