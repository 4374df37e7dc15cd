"""Simulated interview-room control panel on a pty: three buttons and a "recording" lamp.

The agent opens the pty's slave path with pyserial like a real /dev/ttyUSB0; the simulator
holds the master. It speaks the protocol of drivers/panel_serial.py: `press()` sends
`BTN <name>`, `LAMP ON|OFF` switch the lamp and are confirmed with `OK LAMP ...`, acks and
naks are recorded. Every lamp change is time-stamped so tests and the bench can measure the
latency from button to lamp. `hello()` plays a panel that just rebooted (lamp off).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class PanelLog:
    presses: list[tuple[float, str]] = field(default_factory=list)
    lamp_changes: list[tuple[float, bool]] = field(default_factory=list)
    acks: list[tuple[float, str]] = field(default_factory=list)  # "ACK START", "NAK STOP why"


class PanelSim:
    def __init__(self, confirm_lamp: bool = True) -> None:
        self.master, self._slave = os.openpty()
        # Raw from the start: the line discipline would otherwise echo the agent's commands
        # back to it and turn \n into \r\n before pyserial has configured the port.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.lamp = False
        self.confirm_lamp = confirm_lamp
        self.log = PanelLog()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="sim-panel", daemon=True)

    def start(self) -> PanelSim:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- the operator's side -----------------------------------------------------------------

    def press(self, button: str) -> float:
        """Press START, STOP or MARK; returns the time of the press (time.monotonic)."""
        at = time.monotonic()
        with self._cond:
            self.log.presses.append((at, button.upper()))
        os.write(self.master, f"BTN {button.upper()}\n".encode("ascii"))
        return at

    def hello(self) -> None:
        """The panel rebooted: its lamp is dark until the agent tells it again."""
        self._set_lamp(False)
        os.write(self.master, b"HELLO SIM-PANEL 1.0\n")

    def wait_lamp(self, on: bool, timeout: float) -> float | None:
        """Wait until the lamp is `on`; returns when it changed (monotonic) or None."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.lamp is on, timeout)
            if not ok:
                return None
            changes = [t for t, state in self.log.lamp_changes if state is on]
            return changes[-1] if changes else time.monotonic()

    def wait_ack(self, prefix: str, timeout: float, after: float = 0.0) -> str | None:
        with self._cond:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [a for t, a in self.log.acks if t >= after and a.startswith(prefix)]
                return bool(found)

            return found[-1] if self._cond.wait_for(seen, timeout) else None

    # --- the agent's side --------------------------------------------------------------------

    def _read(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 256)
            except OSError:
                time.sleep(0.05)  # nobody has the slave open right now (agent reconnecting)
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self._handle(raw.decode("ascii", errors="replace").strip())

    def _handle(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        if words[0] == "LAMP" and len(words) == 2 and words[1] in ("ON", "OFF"):
            self._set_lamp(words[1] == "ON")
            if self.confirm_lamp:
                os.write(self.master, f"OK LAMP {words[1]}\n".encode("ascii"))
        elif words[0] in ("ACK", "NAK"):
            with self._cond:
                self.log.acks.append((time.monotonic(), line))
                self._cond.notify_all()
        elif words[0] == "PING":
            os.write(self.master, b"PONG\n")
        else:
            logger.info("panel simulator: unknown command %r", line)

    def _set_lamp(self, on: bool) -> None:
        with self._cond:
            if self.lamp is not on:
                self.lamp = on
                self.log.lamp_changes.append((time.monotonic(), on))
                logger.info("panel simulator: lamp %s", "ON" if on else "off")
            self._cond.notify_all()
