"""The control-panel driver over a real pty with pyserial: buttons, lamp, acks, reboots."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from drivers.panel_serial import PanelSettings, SerialPanel
from simulators.panel import PanelSim


@pytest.fixture
def rig() -> Iterator[tuple[PanelSim, SerialPanel, list[str]]]:
    sim = PanelSim().start()
    pressed: list[str] = []
    stop = threading.Event()
    panel = SerialPanel(
        PanelSettings(port=sim.path, ack_timeout_seconds=0.3, reopen_seconds=0.2),
        pressed.append,
        stop,
    )
    t = threading.Thread(target=panel.run, daemon=True)
    t.start()
    _until(lambda: panel.connected)
    yield sim, panel, pressed
    stop.set()
    t.join(3)
    sim.close()


def _until(cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_buttons_reach_the_handler(rig: tuple[PanelSim, SerialPanel, list[str]]) -> None:
    sim, panel, pressed = rig
    for b in ("START", "MARK", "STOP"):
        sim.press(b)
    _until(lambda: len(pressed) == 3)
    assert pressed == ["START", "MARK", "STOP"]


def test_lamp_is_confirmed_and_acks_are_framed(
    rig: tuple[PanelSim, SerialPanel, list[str]],
) -> None:
    sim, panel, _ = rig
    panel.set_lamp(True)
    assert sim.wait_lamp(True, 3) is not None
    _until(lambda: panel.lamp is True)
    panel.ack("START", False, "session already\nrecording")
    assert sim.wait_ack("NAK START", 3) == "NAK START session already recording"
    panel.set_lamp(False)
    assert sim.wait_lamp(False, 3) is not None


def test_a_rebooted_panel_gets_the_lamp_again(rig: tuple[PanelSim, SerialPanel, list[str]]) -> None:
    sim, panel, _ = rig
    panel.set_lamp(True)
    assert sim.wait_lamp(True, 3) is not None
    sim.hello()  # power cycle: lamp dark (the agent may relight it at once: read the log)
    off_at = [t for t, on in sim.log.lamp_changes if not on][-1]
    relit = sim.wait_lamp(True, 3)
    assert relit is not None and relit > off_at


def test_unconfirmed_lamp_commands_are_repeated() -> None:
    sim = PanelSim(confirm_lamp=False).start()
    stop = threading.Event()
    panel = SerialPanel(PanelSettings(port=sim.path, ack_timeout_seconds=0.2), lambda b: None, stop)
    t = threading.Thread(target=panel.run, daemon=True)
    t.start()
    try:
        _until(lambda: panel.connected)
        panel.set_lamp(True)
        assert sim.wait_lamp(True, 3) is not None
        sim.lamp = False  # it missed the command (line noise)
        assert sim.wait_lamp(True, 3) is not None  # sent again: never confirmed
        assert panel.lamp is None  # and the driver does not claim to know
    finally:
        stop.set()
        t.join(3)
        sim.close()


def test_missing_port_is_retried_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    panel = SerialPanel(
        PanelSettings(port="/dev/ttyNOPE9", reopen_seconds=0.1), lambda b: None, stop
    )
    t = threading.Thread(target=panel.run, daemon=True)
    t.start()
    time.sleep(0.4)
    stop.set()
    t.join(3)
    assert not t.is_alive()
    assert "/dev/ttyNOPE9 cannot be opened" in caplog.text
