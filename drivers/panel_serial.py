"""Interview-room control panel on a serial line (pyserial): buttons in, lamp and acks out.

Protocol (ASCII lines, `\\n` or `\\r\\n`, default 9600 8N1), documented in docs/interview.md:

    panel -> agent   BTN START | BTN STOP | BTN MARK     a button was pressed
                     OK LAMP ON | OK LAMP OFF            the lamp did what it was told
                     HELLO <anything>                    the panel (re)started
                     PONG                                answer to PING
    agent -> panel   LAMP ON | LAMP OFF                  show / stop showing "recording"
                     ACK <button> | NAK <button> <why>   the press was taken / refused
                     PING                                liveness check

The lamp is only as truthful as what the panel confirms: the driver keeps the state the agent
wants, re-sends it until the panel answers `OK`, and again whenever the panel says HELLO or the
port comes back after being unplugged, so a panel that rebooted never shows a stale lamp.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

BUTTONS = ("START", "STOP", "MARK")


class PanelSettings(BaseModel):
    """`[interview.panel]`: the room's control panel."""

    model_config = ConfigDict(extra="forbid")
    port: str = Field(
        description="Serial device of the panel, e.g. /dev/ttyUSB0 (a pty path "
        "from `simulate interview-room` works too)."
    )
    baudrate: int = Field(9600, description="Line speed (8N1).")
    ack_timeout_seconds: float = Field(
        1.0, gt=0, le=30, description="Re-send a lamp command the panel has not confirmed by then."
    )
    reopen_seconds: float = Field(
        2.0, gt=0, le=60, description="Wait before reopening the port after it failed or vanished."
    )


ButtonFn = Callable[[str], None]


class SerialPanel:
    """One panel. `run()` is the body of the driver's thread; other methods are thread-safe."""

    def __init__(
        self,
        settings: PanelSettings,
        on_button: ButtonFn,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.on_button = on_button
        self.stop = stop
        self._port: Any = None
        self._write_lock = threading.Lock()
        self._want_lamp: bool | None = None
        self._confirmed: bool | None = None  # what the panel last said it shows
        self._sent_at = 0.0
        self.connected = False
        self.presses = 0

    # --- what the service calls -----------------------------------------------------------

    def set_lamp(self, on: bool) -> None:
        """Ask for the lamp state; sent now and repeated until the panel confirms it."""
        if self._want_lamp is on:
            return  # already asked for; _resend_if_due repeats it until confirmed
        self._want_lamp = on
        self._send_lamp()

    @property
    def lamp(self) -> bool | None:
        """The lamp state the panel confirmed (None: unknown or not yet confirmed)."""
        return self._confirmed if self._confirmed == self._want_lamp else None

    def ack(self, button: str, ok: bool, reason: str = "") -> None:
        if ok:
            self._write(f"ACK {button}")
        else:
            # One line per message: a reason must not break the protocol's framing.
            why = " ".join(reason.split())[:120]
            self._write(f"NAK {button} {why}".rstrip())

    # --- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        """Open the port, read lines, dispatch; reopen after errors until stop is set."""
        while not self.stop.is_set():
            try:
                self._open()
            except Exception as exc:  # noqa: BLE001 - serial raises several kinds
                logger.warning(
                    "control panel %s cannot be opened: %s; retrying in %.0f s (check "
                    "interview.panel.port and that the panel is plugged in)",
                    self.settings.port,
                    exc,
                    self.settings.reopen_seconds,
                )
                self.stop.wait(self.settings.reopen_seconds)
                continue
            try:
                self._read_loop()
            except Exception as exc:  # noqa: BLE001
                if not self.stop.is_set():
                    logger.warning(
                        "control panel %s failed: %s; reopening", self.settings.port, exc
                    )
            finally:
                if self.stop.is_set():
                    self._write("LAMP OFF")  # the agent is stopping: nothing records now
                self._close()
            self.stop.wait(self.settings.reopen_seconds)

    def _open(self) -> None:
        import serial  # lazy: only a station with a panel configured needs pyserial loaded

        port = serial.Serial(
            self.settings.port, self.settings.baudrate, timeout=0.2, write_timeout=2
        )
        self._port = port
        self.connected = True
        self._confirmed = None
        logger.info("control panel connected on %s", self.settings.port)
        if self._want_lamp is not None:
            self._send_lamp()  # the panel may have lost power: tell it again

    def _close(self) -> None:
        port, self._port = self._port, None
        self.connected = False
        self._confirmed = None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001
                pass

    def _read_loop(self) -> None:
        buf = b""
        while not self.stop.is_set():
            # read(n) would wait out the whole timeout for n bytes: take what is there.
            chunk = self._port.read(max(1, self._port.in_waiting))
            if chunk:
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    self._handle(raw.decode("ascii", errors="replace").strip())
                if len(buf) > 1024:  # noise on the line without newlines: drop it
                    buf = b""
            self._resend_if_due()

    def _handle(self, line: str) -> None:
        if not line:
            return
        words = line.upper().split()
        if words[0] == "BTN" and len(words) >= 2:
            button = words[1]
            if button not in BUTTONS:
                logger.warning("control panel: unknown button %r", button)
                self.ack(button, False, "unknown button")
                return
            self.presses += 1
            logger.info("control panel: %s pressed", button)
            try:
                self.on_button(button)
            except Exception as exc:  # noqa: BLE001 - a failing handler must not kill the panel
                logger.exception("control panel: handling %s failed", button)
                self.ack(button, False, str(exc))
        elif words[:2] == ["OK", "LAMP"] and len(words) >= 3:
            self._confirmed = words[2] == "ON"
        elif words[0] == "HELLO":
            logger.info("control panel says hello: %s", line[5:].strip())
            self._confirmed = None
            if self._want_lamp is not None:
                self._send_lamp()
        elif words[0] == "PING":
            self._write("PONG")
        elif words[0] != "PONG":
            logger.debug("control panel: ignored line %r", line)

    def _resend_if_due(self) -> None:
        if self._want_lamp is None or self._confirmed is self._want_lamp:
            return
        if time.monotonic() - self._sent_at >= self.settings.ack_timeout_seconds:
            logger.warning(
                "control panel %s has not confirmed LAMP %s; sending again",
                self.settings.port,
                "ON" if self._want_lamp else "OFF",
            )
            self._send_lamp()

    def _send_lamp(self) -> None:
        want = self._want_lamp
        if want is None:
            return
        self._sent_at = time.monotonic()
        self._write("LAMP ON" if want else "LAMP OFF")

    def _write(self, line: str) -> None:
        port = self._port
        if port is None:
            return  # sent again on reconnect (lamp); acks for a gone panel are moot
        with self._write_lock:
            try:
                port.write((line + "\n").encode("ascii", errors="replace"))
                port.flush()
            except Exception as exc:  # noqa: BLE001
                logger.warning("control panel %s: write failed: %s", self.settings.port, exc)
