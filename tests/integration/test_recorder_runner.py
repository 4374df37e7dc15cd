"""The daemon's per-driver loop: sightings in the ledger, errors per device, passwords never
retried in a loop, duplicate serials held, clock drift recorded and handled, inventory."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from agent.actions import status
from agent.recorders import inventory as devices
from agent.recorders.driverloop import DriverRunner
from agent.recorders.linker import Linker
from agent.station.context import Context
from drivers.base import DriverEnv
from drivers.zfy_usb import ZfyUsbDriver, ZfyUsbSettings
from fixtures.recorders import PASSWORD, UsbSim
from simulators.usb_recorder import SimUsbRecorder


def runner(ctx: Context, usb_sim: UsbSim, secrets: dict[str, str] | None = None) -> DriverRunner:
    secrets = {"zfy_admin_password": PASSWORD} if secrets is None else secrets
    env = DriverEnv(timezone=ctx.cfg.station.timezone, secret=secrets.get)
    driver = ZfyUsbDriver(ZfyUsbSettings(timeout_ms=200), env, usb_backend=usb_sim.backend)
    return DriverRunner(ctx, driver, Linker())


def events(ctx: Context, type_: str) -> list[dict[str, Any]]:
    rows = ctx.ledger.query("SELECT payload FROM outbox WHERE type=? ORDER BY seq", (type_,))
    return [json.loads(r[0]) for r in rows]


def custody(ctx: Context, type_: str) -> list[dict[str, Any]]:
    rows = ctx.ledger.query("SELECT payload FROM custody WHERE type=? ORDER BY seq", (type_,))
    return [json.loads(r[0]) for r in rows]


def wait_switched(rec: SimUsbRecorder, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not rec.in_storage_mode and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rec.in_storage_mode


def test_sighting_records_battery_port_and_docks_once(station, usb_sim: UsbSim) -> None:  # type: ignore[no-untyped-def]
    ctx = station.context()
    rec = SimUsbRecorder("ZFY0201", battery_pct=9, charging=False)
    usb_sim.bus.plug(rec, port=4)
    r = runner(ctx, usb_sim)
    r.step()
    wait_switched(rec)
    r.step()
    (dev,) = [d for d in status.recorders(ctx) if d["serial"] == "ZFY0201"]
    assert (dev["battery"], dev["charging"], dev["port"], dev["docked"]) == (
        9,
        False,
        "usb 1-4",
        True,
    )
    assert dev["serial_source"] == "usb" and dev["driver"] == "zfy_usb/zfy"
    assert dev["status"] == "unregistered" and not dev["quarantined"]  # no inventory: accepted
    assert len(events(ctx, "recorder.docked")) == 1


def test_wrong_password_counted_once_then_retried_only_with_a_new_one(
    station, usb_sim: UsbSim
) -> None:  # type: ignore[no-untyped-def]
    ctx = station.context()
    rec = SimUsbRecorder("ZFY0202", password="777777", max_login_attempts=3)
    usb_sim.bus.plug(rec, port=1)
    secrets = {"zfy_admin_password": PASSWORD}
    r = runner(ctx, usb_sim, secrets)
    for _ in range(10):
        r.step()
    assert rec.login_attempts == 1 and not rec.locked
    (err,) = events(ctx, "recorder.error")
    assert err["code"] == "auth" and err["serial"] == "ZFY0202" and err["stage"] == "login"
    assert PASSWORD not in json.dumps(err)
    (dev,) = status.recorders(ctx)
    assert dev["login_failures"] == 1 and "wrong admin password" in dev["last_error"]
    secrets["zfy_admin_password"] = "777777"  # the operator fixes the credential
    r.step()
    wait_switched(rec)
    assert rec.login_attempts == 2


def test_duplicate_serials_hold_the_second_device_only(station, usb_sim: UsbSim) -> None:  # type: ignore[no-untyped-def]
    ctx = station.context()
    a, b, c = SimUsbRecorder("DUP0001"), SimUsbRecorder("DUP0001"), SimUsbRecorder("ZFY0203")
    for port, rec in enumerate((a, b, c), 1):
        usb_sim.bus.plug(rec, port=port)
    r = runner(ctx, usb_sim)
    r.step()
    wait_switched(a)
    wait_switched(c)
    assert not b.in_storage_mode and b.login_attempts == 0
    (err,) = events(ctx, "recorder.error")
    assert err["code"] == "duplicate" and err["serial"] == "DUP0001"
    assert "also reports" in err["message"]
    recs = {d["serial"]: d for d in status.recorders(ctx)}
    assert recs["DUP0001"]["last_error"] is None  # the copy's error is not pinned on it


def test_a_failing_device_does_not_stop_the_others(station, usb_sim: UsbSim) -> None:  # type: ignore[no-untyped-def]
    ctx = station.context()
    bad = SimUsbRecorder("ZFY0204", unresponsive=True)
    gone = SimUsbRecorder("ZFY0205", vanish_on="battery")
    good = SimUsbRecorder("ZFY0206")
    for port, rec in enumerate((bad, gone, good), 1):
        usb_sim.bus.plug(rec, port=port)
    r = runner(ctx, usb_sim)
    r.step()
    wait_switched(good)
    codes = sorted((e["code"], e["stage"]) for e in events(ctx, "recorder.error"))
    assert codes == [("disconnected", "status"), ("timeout", "identify")]
    r.step()  # the vanished one is forgotten, the silent one is not asked again
    assert len(events(ctx, "recorder.error")) == 2


@pytest.mark.parametrize("policy", ["trusted", "untrusted"])
def test_clock_drift_recorded_and_set_only_when_the_station_clock_is_trusted(
    make_station, usb_sim: UsbSim, policy: str
) -> None:  # type: ignore[no-untyped-def]
    st = make_station(f'[recorders]\nstation_clock = "{policy}"\nclock_threshold_seconds = 30\n')
    ctx = st.context()
    rec = SimUsbRecorder("ZFY0207", clock_offset_s=3 * 3600)
    usb_sim.bus.plug(rec, port=1)
    runner(ctx, usb_sim).step()
    wait_switched(rec)
    (offset,) = custody(ctx, "device.clock_offset")
    assert abs(offset["offset_s"] - 10800) < 3 and offset["station_clock_trusted"] == (
        policy == "trusted"
    )
    (drift,) = events(ctx, "clock.drift")
    if policy == "trusted":
        assert drift["action"] == "set" and len(rec.clock_sets) == 1
        assert abs(rec.clock_offset_s) < 2
        assert len(custody(ctx, "device.clock_set")) == 1
    else:
        assert drift["action"] == "left" and "untrusted" in drift["reason"]
        assert rec.clock_sets == [] and rec.clock_offset_s == 3 * 3600
    (dev,) = status.recorders(ctx)
    assert abs(dev["clock_offset_s"] - 10800) < 3


def test_inventory_import_and_unknown_recorder(
    make_station, usb_sim: UsbSim, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    inv = tmp_path / "inventory.csv"
    inv.write_text(
        "vendor,serial,unit_id,officer_id,status,note\nzfy,ZFY0208,HB-01,310208,在用,\n"
        "zfy,ZFY0299,HB-01,,维修,送修\n",
        encoding="utf-8",
    )
    st = make_station(f'[inventory]\nfile = "{inv}"\n')
    ctx = st.context()
    assert devices.import_inventory(ctx) == 2
    assert devices.import_inventory(ctx) is None  # unchanged file: nothing to do
    known, unknown = SimUsbRecorder("ZFY0208"), SimUsbRecorder("ZFY0209")
    usb_sim.bus.plug(known, port=1)
    usb_sim.bus.plug(unknown, port=2)
    runner(ctx, usb_sim).step()
    recs = {d["serial"]: d for d in status.recorders(ctx)}
    # The inventory's "zfy" and the driver's "ZFY" are one recorder, not two rows.
    assert set(recs) == {"ZFY0208", "ZFY0209", "ZFY0299"}
    assert recs["ZFY0208"]["vendor"] == "zfy" and recs["ZFY0208"]["status"] == "in_service"
    assert recs["ZFY0208"]["docked"] and not recs["ZFY0208"]["quarantined"]
    assert recs["ZFY0299"]["status"] == "repair" and not recs["ZFY0299"]["docked"]
    assert recs["ZFY0209"]["status"] == "unregistered" and recs["ZFY0209"]["quarantined"]
    (unk,) = events(ctx, "recorder.unknown")
    assert unk["serial"] == "ZFY0209"
    inv.write_text("vendor,serial,unit_id,officer_id,status,note\nzfy,ZFY0208,HB-01,,lost,\n")
    assert devices.import_inventory(ctx) == 1
    recs = {d["serial"]: d for d in status.recorders(ctx)}
    assert recs["ZFY0208"]["status"] == "lost" and not recs["ZFY0299"]["registered"]
    assert [c["items"] for c in custody(ctx, "inventory.imported")] == [2, 1]


def test_broken_inventory_keeps_the_last_good_list(make_station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inv = tmp_path / "inventory.csv"
    inv.write_text("vendor,serial,unit_id,officer_id,status,note\nzfy,ZFY0210,HB-01,,在用,\n")
    ctx = make_station(f'[inventory]\nfile = "{inv}"\n').context()
    assert ctx.inventory_status("ZFY", "ZFY0210") == (True, "in_service", False)
    assert devices.import_inventory(ctx) == 1
    inv.write_text("vendor,serial\nbroken")
    assert ctx.inventory_status("ZFY", "ZFY0210")[0]
    assert any("missing" in p for p in ctx.rosters.problems())
    assert devices.import_inventory(ctx) is None  # the last good list is still the one in force


def test_unreadable_identity_still_exposes_the_volume(station, usb_sim: UsbSim) -> None:  # type: ignore[no-untyped-def]
    ctx = station.context()
    rec = SimUsbRecorder("ZFY0211", info_reply=b"\x01\x02" + b"\0" * 87)
    usb_sim.bus.plug(rec, port=1)
    runner(ctx, usb_sim).step()
    wait_switched(rec)  # the volume's DEVINFO.TXT will name it
    (err,) = events(ctx, "recorder.error")
    assert err["code"] == "garbled" and err["stage"] == "identify" and err["serial"] is None
