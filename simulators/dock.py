"""A dock of N bays that plugs simulated recorders in and out on a script.

Each recorder's footage is written up front (simulators/bodycam.py) into a hidden staging
directory under the mount root; the volume appears under the mount root, atomically, when the
recorder exposes it: at once for a plain mass-storage recorder, after the agent switched it to
storage mode for USB (ZFY or Ambarella protocol, on a `SimBus` exported on a Unix socket)
and serial recorders (a pty per bay, linked as `<tty_dir>/bay<N>`). Unplugging takes the
volume away again (back to staging, so erased files stay erased on a re-dock).

`run_dock()` is the entry point for the demo and for `evidence-agent simulate dock`.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.bodycam import BodycamSpec, write_volume
from simulators.dockscript import DockEvent, DockRecorder, DockScript, builtin
from simulators.serial_recorder import SerialRecorderSim
from simulators.usb_backend import SimBackend, SimBus
from simulators.usb_recorder import SimUsbRecorder
from simulators.usb_server import UsbSimServer

logger = logging.getLogger(__name__)

STAGING = ".dock-staging"


@dataclass
class BayLog:
    at: float
    action: str
    serial: str
    bay: int | None
    note: str = ""


@dataclass
class _Unit:
    """One recorder's live simulation objects."""

    rec: DockRecorder
    usb: SimUsbRecorder | None = None
    serial: SerialRecorderSim | None = None
    bay: int | None = None
    exposed: bool = False


@dataclass
class Dock:
    mount_root: Path
    bays: int
    recorders: list[DockRecorder]
    usb_socket: Path | None = None
    tty_dir: Path | None = None
    time_scale: float = 1.0
    log: list[BayLog] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mount_root = Path(self.mount_root)
        self.staging = self.mount_root / STAGING
        self.bus = SimBus()
        self.backend = SimBackend(self.bus)  # in-process drivers may use it directly
        self._server: UsbSimServer | None = None
        self._units: dict[str, _Unit] = {}
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        serials = [r.serial for r in self.recorders]
        if len(set(serials)) != len(serials):
            raise ValueError("recorders: serials must be unique within a dock")
        needs_usb = any(r.transport in ("usb", "ambarella") for r in self.recorders)
        if needs_usb and self.usb_socket is None:
            logger.info("dock: no usb_socket; USB recorders reachable in-process only")
        if any(r.transport == "serial" for r in self.recorders) and self.tty_dir is None:
            raise ValueError("serial recorders need tty_dir (where bay ttys are linked)")

    # --- setup --------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Write every recorder's footage to staging and start the USB socket."""
        self.mount_root.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(exist_ok=True)
        for rec in self.recorders:
            vol = self.staging / rec.serial
            for old in (vol, self.mount_root / rec.serial):  # left by an earlier run
                if old.exists():
                    shutil.rmtree(old)
            write_volume(vol, rec.spec)
            self._units[rec.serial] = _Unit(rec, *self._control(rec))
        if self.usb_socket is not None:
            self._server = UsbSimServer(self.backend, self.usb_socket).start()
        logger.info("dock: %d recorders ready, %d bays", len(self.recorders), self.bays)

    def _control(self, rec: DockRecorder) -> tuple[SimUsbRecorder | None, SerialRecorderSim | None]:
        s = rec.spec
        common: dict[str, Any] = {
            "officer_id": s.officer, "officer_name": s.officer_name, "unit_id": s.unit,
            "unit_name": s.unit_name, "battery_pct": rec.battery_pct, "charging": rec.charging,
            "clock_offset_s": rec.clock_offset_s, "timezone": s.timezone,
        }  # fmt: skip
        vanish = next((f.split(":", 1)[1] for f in rec.faults if f.startswith("vanish:")), None)
        if rec.transport in ("usb", "ambarella"):
            usb = SimUsbRecorder(
                s.serial,
                personality="zfy" if rec.transport == "usb" else "ambarella",
                password=rec.password,
                vanish_on=vanish,
                unresponsive="unresponsive" in rec.faults,
                info_reply=b"\xff\x00garbage" if "garbage_info" in rec.faults else None,
                on_storage_mode=lambda r: self._expose(r.serial),
                **common,
            )
            return usb, None
        if rec.transport == "serial":
            ser = SerialRecorderSim(
                s.serial,
                vendor=s.vendor,
                faults=tuple(f for f in rec.faults if not f.startswith("vanish:")),
                vanish_on=vanish,
                on_storage_mode=lambda r: self._expose(r.serial),
                **common,
            )
            return None, ser
        return None, None

    # --- bays ---------------------------------------------------------------------------------

    def plug(self, serial: str, bay: int | None = None) -> None:
        unit = self._units[serial]
        with self._lock:
            taken = {u.bay for u in self._units.values() if u.bay is not None}
            if unit.bay is not None:
                return
            bay = bay or next((b for b in range(1, self.bays + 1) if b not in taken), None)
            if bay is None or bay in taken or not 1 <= bay <= self.bays:
                self._note("plug", serial, bay, "no free bay; recorder not plugged")
                return
            unit.bay = bay
        self._note("plug", serial, bay)
        if unit.usb is not None:
            self.bus.plug(unit.usb, port=bay)
        elif unit.serial is not None:
            assert self.tty_dir is not None
            unit.serial.link = self.tty_dir / f"bay{bay}"
            unit.serial.plug()
        else:
            self._expose(serial)

    def unplug(self, serial: str) -> None:
        unit = self._units[serial]
        with self._lock:
            bay, unit.bay = unit.bay, None
        if bay is None:
            return
        if unit.usb is not None:
            self.bus.unplug(unit.usb)
        if unit.serial is not None:
            unit.serial.unplug()
        self._hide(serial)
        self._note("unplug", serial, bay)

    def _expose(self, serial: str) -> None:
        """The recorder's volume appears under the mount root (the OS mounted it)."""
        with self._lock:
            unit = self._units[serial]
            if unit.exposed or unit.bay is None:
                return
            os.rename(self.staging / serial, self.mount_root / serial)
            unit.exposed = True
        self._note("volume", serial, unit.bay, str(self.mount_root / serial))

    def _hide(self, serial: str) -> None:
        with self._lock:
            unit = self._units[serial]
            if unit.exposed:
                os.rename(self.mount_root / serial, self.staging / serial)
                unit.exposed = False

    def _note(self, action: str, serial: str, bay: int | None, note: str = "") -> None:
        entry = BayLog(round(time.monotonic() - self._t0, 3), action, serial, bay, note)
        self.log.append(entry)
        logger.info("dock: %s %s bay %s %s", action, serial, bay, note)

    # --- running a script ---------------------------------------------------------------------

    def run(self, script: DockScript, stop: threading.Event) -> None:
        """Play the script (time-scaled); then hold until `stop`; then unplug everything."""
        self._t0 = start = time.monotonic()
        try:
            for ev in script.events:
                if stop.wait(max(0.0, start + ev.at * self.time_scale - time.monotonic())):
                    break
                self.apply(ev)
            stop.wait()
        finally:
            self.close()

    def apply(self, ev: DockEvent) -> None:
        if ev.serial not in self._units:
            self._note(ev.action, ev.serial, ev.bay, "unknown recorder in script; skipped")
        elif ev.action == "plug":
            self.plug(ev.serial, ev.bay)
        else:
            self.unplug(ev.serial)

    def usb(self, serial: str) -> SimUsbRecorder | None:
        return self._units[serial].usb

    def serial_sim(self, serial: str) -> SerialRecorderSim | None:
        return self._units[serial].serial

    def close(self) -> None:
        for serial in list(self._units):
            self.unplug(serial)
        if self._server is not None:
            self._server.close()
            self._server = None


def run_dock(
    mount_root: Path,
    bays: int,
    recorders: list[BodycamSpec] | list[DockRecorder],
    stop: threading.Event,
    script: DockScript | str = "shift-change",
    *,
    usb_socket: Path | None = None,
    tty_dir: Path | None = None,
    time_scale: float = 1.0,
    window_s: float = 120.0,
    dwell_s: float | None = None,
    ready: threading.Event | None = None,
    on_ready: Any = None,
) -> Dock:
    """Run a dock until `stop` is set; returns it (its `log` says what happened when).

    `recorders` as plain BodycamSpecs become USB (ZFY protocol) recorders when `usb_socket`
    is given, else plain mass-storage recorders. `on_ready(dock)` is called once the footage
    is written and the USB socket listens, before the first event.
    """
    units = [
        r if isinstance(r, DockRecorder) else
        DockRecorder(r, transport="usb" if usb_socket else "mass_storage")
        for r in recorders
    ]  # fmt: skip
    if isinstance(script, str):
        script = builtin(script, [u.serial for u in units], bays, window_s, dwell_s)
    dock = Dock(mount_root, bays, units, usb_socket, tty_dir, time_scale)
    dock.prepare()
    if on_ready is not None:
        on_ready(dock)
    if ready is not None:
        ready.set()
    dock.run(script, stop)
    return dock
