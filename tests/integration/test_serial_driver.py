"""The serial driver's real pyserial code on the slave end of a pty, the recorder on the master."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.base import DeviceError
from drivers.serial_port import SerialDriver, SerialSettings
from simulators.serial_recorder import SerialRecorderSim

MakeSim = Callable[..., SerialRecorderSim]


def driver_for(*ports: str, timeout: float = 0.5) -> SerialDriver:
    return SerialDriver(SerialSettings(ports=list(ports), timeout_seconds=timeout))


def test_identify_battery_time_and_storage(serial_sims: MakeSim, tmp_path: Path) -> None:
    sim = serial_sims(
        "SER0042", officer_name="李;四=%", battery_pct=33, charging=False, clock_offset_s=-5400,
        link=tmp_path / "tty" / "bay1",
    )  # fmt: skip
    sim.plug()
    driver = driver_for(str(tmp_path / "tty" / "*"))
    try:
        (h,) = driver.discover()
        assert h == str(tmp_path / "tty" / "bay1")
        ident = driver.identify(h)
        assert (ident.vendor, ident.serial, ident.source, ident.port) == (
            "ZFY",
            "SER0042",
            "serial",
            h,
        )
        assert ident.officer_name == "李;四=%"  # escaped on the wire, intact here
        st = driver.status(h)
        assert (st.battery_pct, st.charging) == (33, False)
        assert st.clock is not None
        assert abs((st.clock - datetime.now(UTC)).total_seconds() + 5400) < 3
        driver.set_clock(h, datetime.now(UTC))
        assert len(sim.clock_sets) == 1 and abs(sim.clock_offset_s) < 2
        driver.storage_mode(h)
        assert sim.in_storage_mode
        assert sim.commands == ["ID", "BATTERY", "TIME?", sim.commands[3], "STORAGE"]
        assert sim.commands[3].startswith("TIME ")
    finally:
        driver.close()


def test_port_is_opened_exclusively(serial_sims: MakeSim) -> None:
    sim = serial_sims("SER0043")
    path = sim.plug()
    first, second = driver_for(path), driver_for(path)
    try:
        assert first.identify(path).serial == "SER0043"
        with pytest.raises(DeviceError) as err:
            second.identify(path)
        assert err.value.code == "busy" and "another program" in str(err.value)
    finally:
        first.close()
        second.close()


def test_unplugged_port_disappears_from_discovery(serial_sims: MakeSim, tmp_path: Path) -> None:
    sim = serial_sims("SER0044", link=tmp_path / "bay1")
    sim.plug()
    driver = driver_for(str(tmp_path / "bay*"))
    assert driver.discover() == [str(tmp_path / "bay1")]
    sim.unplug()
    assert driver.discover() == []
