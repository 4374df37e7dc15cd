"""The ZFY-style USB driver's real pyusb calls against the simulated recorders' backend.

Each test runs twice: with the backend object plugged in directly and through the Unix socket
an agent in another process uses (`backend = "sim:<path>"`).
"""

from __future__ import annotations

import errno
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import usb.core

from agent.ingest.ingestor import Ingestor
from drivers.base import DeviceAuthError, DriverEnv
from drivers.zfy_usb import ZfyUsbDriver, ZfyUsbSettings
from fixtures.recorders import PASSWORD, UsbSim
from simulators.bodycam import BodycamSpec
from simulators.dock import Dock
from simulators.dockscript import DockRecorder
from simulators.usb_recorder import SimUsbRecorder

MakeDriver = Callable[..., ZfyUsbDriver]


@pytest.fixture(params=["in-process", "socket"])
def make_driver(request: pytest.FixtureRequest, usb_sim: UsbSim) -> MakeDriver:
    def make(env: DriverEnv | None = None, **settings: object) -> ZfyUsbDriver:
        env = env or DriverEnv(secret={"zfy_admin_password": PASSWORD}.get)
        if request.param == "socket":
            cfg = ZfyUsbSettings(backend=f"sim:{usb_sim.socket}", **settings)  # type: ignore[arg-type]
            return ZfyUsbDriver(cfg, env)
        cfg = ZfyUsbSettings(**settings)  # type: ignore[arg-type]
        return ZfyUsbDriver(cfg, env, usb_backend=usb_sim.backend)

    return make


def one_handle(driver: ZfyUsbDriver) -> str:
    handles = driver.discover()
    assert len(handles) == 1, handles
    return handles[0]


def test_identify_battery_and_clock(usb_sim: UsbSim, make_driver: MakeDriver) -> None:
    rec = SimUsbRecorder(
        "ZFY0042", officer_id="310042", officer_name="王小明", unit_id="HB-ZD01",
        unit_name="生态环境综合执法支队", battery_pct=15, charging=False, clock_offset_s=3 * 3600,
    )  # fmt: skip
    usb_sim.bus.plug(rec, port=3)
    driver = make_driver()
    h = one_handle(driver)
    ident = driver.identify(h)
    assert (ident.vendor, ident.serial, ident.source) == ("ZFY", "ZFY0042", "usb")
    assert (ident.officer_id, ident.officer_name) == ("310042", "王小明")
    assert (ident.unit_id, ident.unit_name) == ("HB-ZD01", "生态环境综合执法支队")
    assert ident.port == "usb 1-3" and ident.notes == []
    st = driver.status(h)
    assert (st.battery_pct, st.charging) == (15, False)
    assert st.clock is not None
    drift = (st.clock - datetime.now(UTC)).total_seconds()
    assert abs(drift - 3 * 3600) < 3


def test_clock_set_logs_in_first(usb_sim: UsbSim, make_driver: MakeDriver) -> None:
    rec = SimUsbRecorder("ZFY0043", clock_offset_s=-7200)
    usb_sim.bus.plug(rec, port=1)
    driver = make_driver()
    h = one_handle(driver)
    driver.set_clock(h, datetime.now(UTC))
    assert rec.logged_in and len(rec.clock_sets) == 1
    assert abs(rec.clock_offset_s) < 2
    st = driver.status(h)
    assert st.clock is not None and abs((st.clock - datetime.now(UTC)).total_seconds()) < 2


def test_wrong_password_is_refused_once_and_not_retried(
    usb_sim: UsbSim, make_driver: MakeDriver
) -> None:
    rec = SimUsbRecorder("ZFY0044", password="654321")
    usb_sim.bus.plug(rec, port=1)
    driver = make_driver()
    h = one_handle(driver)
    with pytest.raises(DeviceAuthError) as err:
        driver.storage_mode(h)
    message = str(err.value)
    assert "wrong admin password" in message and "zfy_admin_password" in message
    assert PASSWORD not in message
    assert rec.login_attempts == 1 and rec.failed_logins == 1
    assert not rec.in_storage_mode and driver.discover() == [h]


def test_missing_password_never_reaches_the_device(
    usb_sim: UsbSim, make_driver: MakeDriver
) -> None:
    rec = SimUsbRecorder("ZFY0045")
    usb_sim.bus.plug(rec, port=1)
    driver = make_driver(env=DriverEnv(secret=lambda name: None))
    with pytest.raises(Exception, match="credential 'zfy_admin_password' is not set") as err:
        driver.storage_mode(one_handle(driver))
    assert getattr(err.value, "code", None) == "no_credential"
    assert rec.login_attempts == 0


def test_device_refuses_storage_mode_before_login(usb_sim: UsbSim) -> None:
    """The simulator's own semantics, through plain pyusb: no login, no storage mode."""
    rec = SimUsbRecorder("ZFY0046")
    usb_sim.bus.plug(rec, port=1)
    dev = usb.core.find(backend=usb_sim.backend, idVendor=rec.vid, idProduct=rec.pid)
    assert dev is not None
    with pytest.raises(usb.core.USBError) as err:
        dev.ctrl_transfer(0x40, 0x06, 0, 0, b"\x01")
    assert err.value.errno == errno.EPIPE and not rec.in_storage_mode
    assert dev.serial_number == "ZFY0046"  # string descriptors work through pyusb too


def test_ambarella_login_and_storage_mode_wire_format(
    usb_sim: UsbSim, make_driver: MakeDriver
) -> None:
    rec = SimUsbRecorder("AMB7788", personality="ambarella", password="pw1")
    usb_sim.bus.plug(rec, port=2)
    env = DriverEnv(secret={"amb": "pw1"}.get)
    driver = make_driver(env=env, profile="ambarella", password_credential="amb")
    h = one_handle(driver)
    ident = driver.identify(h)
    assert (ident.vendor, ident.serial, ident.source) == ("Ambarella", "AMB7788", "usb")
    assert driver.status(h).battery_pct is None  # the protocol has no battery command
    driver.storage_mode(h)
    vendor = [t for t in rec.transfers if t["request"] in (80, 85)]
    login_out, login_in, storage_out = vendor[0], vendor[1], vendor[2]
    assert (login_out["type"], login_out["request"], login_out["value"]) == (0x40, 85, 0x0080)
    assert bytes.fromhex(login_out["data"]) == (bytes.fromhex("a1120012") + b"pw1").ljust(64, b"\0")
    assert (login_in["type"], login_in["request"]) == (0xC0, 85)
    assert (storage_out["type"], storage_out["request"]) == (0x40, 80)
    assert bytes.fromhex(storage_out["data"])[:4] == bytes.fromhex("a1230023")
    deadline = time.monotonic() + 3
    while driver.discover() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rec.in_storage_mode and driver.discover() == []  # re-enumerated as mass storage


def test_ambarella_wrong_password(usb_sim: UsbSim, make_driver: MakeDriver) -> None:
    rec = SimUsbRecorder("AMB7789", personality="ambarella", password="right")
    usb_sim.bus.plug(rec, port=2)
    driver = make_driver(env=DriverEnv(secret={"amb": "wrong"}.get), profile="ambarella",
                         password_credential="amb")  # fmt: skip
    with pytest.raises(DeviceAuthError):
        driver.storage_mode(one_handle(driver))
    assert rec.failed_logins == 1 and not rec.in_storage_mode


def test_storage_mode_exposes_the_volume_which_ingests_under_the_usb_identity(
    station, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    spec = BodycamSpec("ZFY0047", "310047", clips=2, seconds=1.0, width=64, height=64)
    dock = Dock(station.mount_root, bays=2, recorders=[DockRecorder(spec)])
    dock.prepare()
    dock.plug("ZFY0047", bay=2)
    env = DriverEnv(secret={"zfy_admin_password": PASSWORD}.get)
    driver = ZfyUsbDriver(ZfyUsbSettings(), env, usb_backend=dock.backend)
    try:
        h = one_handle(driver)
        ident = driver.identify(h)
        driver.storage_mode(h)
        volume = station.mount_root / "ZFY0047"
        deadline = time.monotonic() + 5
        while not volume.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert volume.is_dir() and driver.discover() == []
        ctx = station.context()
        ing = Ingestor(ctx)
        report = ing.register_volume(volume, ident)
        assert report.files == 2
        while (row := ing.claim([report.device_id], retry_seconds=0)) is not None:
            assert ing.ingest(row).state == "spooled"
        dev = ctx.ledger.one("SELECT * FROM devices WHERE serial='ZFY0047'")
        assert dev is not None and dev["serial_source"] == "usb" and dev["port"] == "usb 1-2"
        states = [r[0] for r in ctx.ledger.query("SELECT state FROM recordings")]
        assert states == ["spooled", "spooled"]
    finally:
        dock.close()
        driver.close()


def test_simulator_in_another_process(station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`evidence-agent simulate dock` in a subprocess; this process's driver reaches it."""
    import tempfile

    sock = Path(tempfile.mkdtemp(prefix="ea-dock-")) / "usb.sock"
    proc = station.popen(
        "simulate", "dock", "--bays", "2", "--recorders", "1", "--transports", "usb",
        "--mount-root", str(station.mount_root), "--usb-socket", str(sock),
        "--script", "all-at-once", "--clips", "1", "--seconds", "1", "--duration", "30",
        "--drift", "DSJ0001:-3600",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        env = DriverEnv(secret={"zfy_admin_password": PASSWORD}.get)
        driver = ZfyUsbDriver(ZfyUsbSettings(backend=f"sim:{sock}"), env)
        handles: list[str] = []
        while time.monotonic() < deadline and not handles:
            try:
                handles = driver.discover()
            except Exception:  # noqa: BLE001 - the simulator is still starting
                pass
            time.sleep(0.1)
        assert handles, "simulated recorder never appeared on the socket"
        h = handles[0]
        assert driver.identify(h).serial == "DSJ0001"
        st = driver.status(h)
        assert st.clock is not None
        assert abs((st.clock - datetime.now(UTC)).total_seconds() + 3600) < 3
        driver.storage_mode(h)
        while not (station.mount_root / "DSJ0001").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (station.mount_root / "DSJ0001" / "DEVINFO.TXT").is_file()
        driver.close()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
        shutil.rmtree(sock.parent, ignore_errors=True)
    assert proc.returncode == 0, err
    assert "volume  DSJ0001" in out
