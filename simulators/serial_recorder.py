"""A simulated recorder with a serial control port, on a pty pair.

The simulator holds the pty master and answers the line protocol of drivers/serial_port.py;
the driver opens the slave path with pyserial, as it would open /dev/ttyACM0. Unplugging
closes the master, so the driver's next read fails the way a yanked CDC-ACM device does.
Faults: `silent` (never answers), `garbage` (answers noise), `truncated` (half a line, no
newline), `vanish_on=<COMMAND>` (unplugged while that command is in flight).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

TIME_FORMAT = "%Y%m%dT%H%M%S"
FAULTS = ("silent", "garbage", "truncated")


def _esc(value: str) -> str:
    """Percent-escape what would break the key=value;... framing (UTF-8 stays as is)."""
    return "".join(c if (c.isprintable() and c not in "%;=") else quote(c, safe="") for c in value)


@dataclass
class SerialRecorderSim:
    serial: str
    vendor: str = "ZFY"
    model: str = "DSJ-SIM-S"
    officer_id: str = "100001"
    officer_name: str = "张三"
    unit_id: str = "UNIT01"
    unit_name: str = "某市生态环境局执法支队"
    battery_pct: int = 80
    charging: bool = True
    clock_offset_s: float = 0.0
    timezone: str = "Asia/Shanghai"
    faults: tuple[str, ...] = ()
    vanish_on: str | None = None
    link: Path | None = None  # a stable name (like /dev/serial/by-id/...) for the slave
    on_storage_mode: Callable[[SerialRecorderSim], None] | None = None
    # --- observable state --------------------------------------------------------------------
    commands: list[str] = field(default_factory=list)
    clock_sets: list[datetime] = field(default_factory=list)
    in_storage_mode: bool = False
    slave_path: str | None = None
    _master: int | None = field(default=None, repr=False)
    _slave: int | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def plug(self) -> str:
        """Create the pty and start answering; returns the path the driver opens."""
        self._stop.clear()
        self.in_storage_mode = False
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF games: a CDC-ACM port is a byte pipe
        self._master, self._slave = master, slave
        self.slave_path = os.ttyname(slave)
        if self.link is not None:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            # Made under a hidden name, then renamed: a port glob never sees a half-made link.
            tmp = self.link.with_name(f".{self.link.name}.new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.slave_path)
            tmp.replace(self.link)
        self._thread = threading.Thread(
            target=self._serve, name=f"serial-sim-{self.serial}", daemon=True
        )
        self._thread.start()
        return str(self.link or self.slave_path)

    def unplug(self) -> None:
        self._stop.set()
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def clock(self) -> datetime:
        return datetime.now(ZoneInfo(self.timezone)) + timedelta(seconds=self.clock_offset_s)

    def _serve(self) -> None:
        buf = b""
        master = self._master
        while not self._stop.is_set() and master is not None:
            try:
                ready, _, _ = select.select([master], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._answer(line.decode("utf-8", "replace").strip())

    def _send(self, data: bytes) -> None:
        if self._master is not None:
            try:
                os.write(self._master, data)
            except OSError:
                pass

    def _answer(self, line: str) -> None:
        if not line:
            return
        self.commands.append(line)
        verb = line.split(" ", 1)[0]
        if self.vanish_on and verb == self.vanish_on:
            logger.info("serial sim %s: unplugged during %s", self.serial, verb)
            threading.Thread(target=self.unplug, daemon=True).start()
            return
        if "silent" in self.faults:
            return
        if "garbage" in self.faults:
            self._send(b"\x15\xfe\x00garbage\xff\r\n")
            return
        reply = self._reply(line)
        if "truncated" in self.faults:
            self._send(reply.encode()[: max(1, len(reply) // 2)])
            return
        self._send(b"# cmd " + verb.encode() + b"\r\n")  # chatter the driver must skip
        self._send(reply.encode("utf-8") + b"\r\n")

    def _reply(self, line: str) -> str:
        verb, _, arg = line.partition(" ")
        if verb == "ID":
            fields = {
                "vendor": self.vendor,
                "serial": self.serial,
                "model": self.model,
                "officer_id": self.officer_id,
                "officer_name": self.officer_name,
                "unit_id": self.unit_id,
                "unit_name": self.unit_name,
                "firmware": "SIM-S-1.0",
            }
            return "OK " + ";".join(f"{k}={_esc(v)}" for k, v in fields.items())
        if verb == "BATTERY":
            return f"OK pct={self.battery_pct};charging={int(self.charging)}"
        if verb == "TIME?":
            return f"OK time={self.clock().strftime(TIME_FORMAT)}"
        if verb == "TIME":
            try:
                when = datetime.strptime(arg.strip(), TIME_FORMAT)
            except ValueError:
                return "ERR BADARG time must be YYYYMMDDTHHMMSS"
            aware = when.replace(tzinfo=ZoneInfo(self.timezone))
            self.clock_offset_s = (aware - datetime.now(ZoneInfo(self.timezone))).total_seconds()
            self.clock_sets.append(aware)
            return "OK"
        if verb == "STORAGE":
            if not self.in_storage_mode:
                self.in_storage_mode = True
                if self.on_storage_mode is not None:
                    threading.Thread(target=self.on_storage_mode, args=(self,), daemon=True).start()
            return "OK"
        return f"ERR UNKNOWN {_esc(verb)}"
