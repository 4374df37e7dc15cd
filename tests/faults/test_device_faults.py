"""Bad devices: garbage, truncated replies, silence, unplugged mid-command, bad info blocks.

Each is a DeviceError naming the device, with a code the agent publishes; none hangs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.base import DeviceError, DriverEnv
from drivers.serial_port import SerialDriver, SerialSettings
from drivers.zfy_usb import ZfyUsbDriver, ZfyUsbSettings
from fixtures.recorders import PASSWORD, UsbSim
from simulators.serial_recorder import SerialRecorderSim
from simulators.usb_recorder import SimUsbRecorder, gbk_field


def usb_driver(usb_sim: UsbSim, **kw: object) -> ZfyUsbDriver:
    env = DriverEnv(secret={"zfy_admin_password": PASSWORD}.get)
    return ZfyUsbDriver(ZfyUsbSettings(**kw), env, usb_backend=usb_sim.backend)  # type: ignore[arg-type]


def test_usb_device_vanishing_mid_transfer(usb_sim: UsbSim) -> None:
    usb_sim.bus.plug(SimUsbRecorder("ZFY0101", vanish_on="info"), port=1)
    driver = usb_driver(usb_sim)
    (h,) = driver.discover()
    with pytest.raises(DeviceError) as err:
        driver.identify(h)
    assert err.value.gone and err.value.code == "disconnected"
    assert "disconnected during info" in str(err.value)
    assert driver.discover() == []


def test_usb_device_that_stops_answering_times_out(usb_sim: UsbSim) -> None:
    usb_sim.bus.plug(SimUsbRecorder("ZFY0102", unresponsive=True), port=1)
    driver = usb_driver(usb_sim, timeout_ms=200)
    (h,) = driver.discover()
    t0 = time.monotonic()
    with pytest.raises(DeviceError) as err:
        driver.identify(h)
    assert err.value.code == "timeout" and not err.value.gone
    assert "no answer to info within 200 ms" in str(err.value)
    assert time.monotonic() - t0 < 2


def test_truncated_info_block(usb_sim: UsbSim) -> None:
    usb_sim.bus.plug(SimUsbRecorder("ZFY0103", info_reply=b"ZFY01"), port=1)
    driver = usb_driver(usb_sim)
    (h,) = driver.discover()
    with pytest.raises(DeviceError, match="5 bytes, expected 89") as err:
        driver.identify(h)
    assert err.value.code == "garbled"


def test_info_block_with_non_printable_bytes_is_escaped_not_rejected(usb_sim: UsbSim) -> None:
    block = (
        gbk_field("ZFY0104", 7) + gbk_field("310104", 6) + b"\xb2\xe2\x07\xff\xfe" + b"\0" * 27
        + gbk_field("U1", 12) + b"\x01\x02unit" + b"\0" * 26
    )  # fmt: skip
    usb_sim.bus.plug(SimUsbRecorder("ZFY0104", info_reply=block), port=1)
    driver = usb_driver(usb_sim)
    (h,) = driver.discover()
    ident = driver.identify(h)
    assert ident.serial == "ZFY0104"
    assert ident.officer_name is not None and "\\x07" in ident.officer_name
    assert ident.officer_name.startswith("测")
    assert ident.unit_name == "\\x01\\x02unit"
    assert len(ident.notes) == 2 and "officer_name" in ident.notes[0]


def test_garbage_serial_field_is_an_error_naming_the_bytes(usb_sim: UsbSim) -> None:
    block = b"\x01\x02\x03\0\0\0\0" + b"\0" * 82
    usb_sim.bus.plug(SimUsbRecorder("ZFY0105", info_reply=block), port=1)
    driver = usb_driver(usb_sim)
    (h,) = driver.discover()
    with pytest.raises(DeviceError, match="no usable serial.*010203") as err:
        driver.identify(h)
    assert err.value.code == "garbled" and not err.value.gone


def test_usb_simulator_gone_is_a_transport_error(tmp_path: Path) -> None:
    driver = ZfyUsbDriver(ZfyUsbSettings(backend=f"sim:{tmp_path}/none.sock"), DriverEnv())
    with pytest.raises(DeviceError, match="unreachable") as err:
        driver.discover()
    assert err.value.code == "backend"


@pytest.mark.parametrize(
    ("fault", "code", "text"),
    [
        ("silent", "timeout", "no complete answer to ID"),
        ("garbage", "garbled", "garbled reply to ID"),
        ("truncated", "garbled", "truncated"),
    ],
)
def test_serial_bad_replies(
    serial_sims: Callable[..., SerialRecorderSim], fault: str, code: str, text: str
) -> None:
    sim = serial_sims("SER0101", faults=(fault,))
    path = sim.plug()
    driver = SerialDriver(SerialSettings(ports=[path], timeout_seconds=0.3))
    t0 = time.monotonic()
    with pytest.raises(DeviceError) as err:
        driver.identify(path)
    assert err.value.code == code and text in str(err.value) and path in str(err.value)
    assert time.monotonic() - t0 < 2
    driver.close()


def test_serial_unplugged_mid_command(serial_sims: Callable[..., SerialRecorderSim]) -> None:
    sim = serial_sims("SER0102", vanish_on="STORAGE")
    path = sim.plug()
    driver = SerialDriver(SerialSettings(ports=[path], timeout_seconds=1))
    assert driver.identify(path).serial == "SER0102"
    with pytest.raises(DeviceError) as err:
        driver.storage_mode(path)
    assert err.value.gone and err.value.code == "disconnected"
    assert "disconnected during STORAGE" in str(err.value)
    driver.close()
