"""A simulated USB body-worn recorder speaking the vendor control protocol, with real semantics.

Two personalities, written from the protocol descriptions rather than from the driver's
profiles, so the driver and its profile files are checked against an independent reading:

* `zfy`: the project's generic ZFY command codes (docs/drivers.md): info 0x01 (ZFY_INFO,
  GBK NUL-padded), battery 0x02, clock get 0x03 / set 0x04 (14 ASCII digits, local time),
  login 0x05 (password zero-padded to 32, verdict read back, byte 0 == 1), storage mode 0x06.
  Setting the clock and storage mode are refused (STALL) before a successful login.
* `ambarella`: login = OUT request 85, wValue 0x0080, payload a1120012 + password bytes,
  zero-padded to 64; IN request 85 → 10 bytes, byte 2 == 1 when logged in; storage mode =
  OUT request 80 with payload a1230023 (ignored unless logged in). Identity is the USB
  serial-number string.

Real-device behaviour the agent must cope with: a wrong password is counted and the device
locks after `max_login_attempts`; storage mode makes the device re-enumerate (it vanishes from
the vendor bus and its volume appears); faults: `vanish_on` a command (unplugged mid-transfer),
`unresponsive` (every vendor transfer times out), `info_reply` (garbage/truncated info block).
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import usb.core

PERSONALITIES = {"zfy": (0x5A46, 0x5901), "ambarella": (0x4255, 0x0001)}
ZFY_INFO = (
    ("serial", 7),
    ("officer_id", 6),
    ("officer_name", 32),
    ("unit_id", 12),
    ("unit_name", 32),
)
REQ_INFO, REQ_BATTERY, REQ_CLOCK_GET, REQ_CLOCK_SET, REQ_LOGIN, REQ_STORAGE = range(1, 7)
AMB_LOGIN, AMB_STORAGE = 85, 80
GET_DESCRIPTOR = 6


def stall(what: str) -> usb.core.USBError:
    # libusb reports a STALLed control request as LIBUSB_ERROR_PIPE (errno EPIPE).
    return usb.core.USBError(f"Pipe error ({what})", None, errno.EPIPE)


def no_device() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)", None, errno.ENODEV)


def gbk_field(text: str, size: int) -> bytes:
    """GBK bytes NUL-padded to `size`, cut at a character boundary like the firmware does."""
    out = b""
    for ch in text:
        b = ch.encode("gbk", errors="replace")
        if len(out) + len(b) > size:
            break
        out += b
    return out.ljust(size, b"\0")


@dataclass
class SimUsbRecorder:
    serial: str
    personality: str = "zfy"
    password: str = "123456"
    officer_id: str = "100001"
    officer_name: str = "张三"
    unit_id: str = "UNIT01"
    unit_name: str = "某市生态环境局执法支队"
    battery_pct: int = 80
    charging: bool = True
    clock_offset_s: float = 0.0
    timezone: str = "Asia/Shanghai"
    max_login_attempts: int = 5
    vanish_on: str | None = None  # info|battery|clock_get|clock_set|login|storage_mode
    unresponsive: bool = False
    info_reply: bytes | None = None  # replaces the ZFY_INFO block (garbage/truncated tests)
    reenumerate_s: float = 0.2
    vid: int | None = None
    pid: int | None = None
    # Set by the bus: called as on_vanish(self) when the device leaves the bus on its own.
    on_storage_mode: Callable[[SimUsbRecorder], None] | None = None
    # --- observable state --------------------------------------------------------------------
    logged_in: bool = False
    locked: bool = False
    login_attempts: int = 0
    failed_logins: int = 0
    in_storage_mode: bool = False
    clock_sets: list[datetime] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _detach: Callable[[], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.personality not in PERSONALITIES:
            raise ValueError(f"personality: choose from {sorted(PERSONALITIES)}")
        vid, pid = PERSONALITIES[self.personality]
        self.vid = self.vid if self.vid is not None else vid
        self.pid = self.pid if self.pid is not None else pid

    # --- lifecycle (called by the bus) -----------------------------------------------------

    def attached(self, detach: Callable[[], None]) -> None:
        """Plugged in: a fresh power-on session (login state and lockout reset)."""
        with self._lock:
            self._detach = detach
            self.logged_in = self.locked = self.in_storage_mode = False
            self.failed_logins = 0

    def clock(self) -> datetime:
        return datetime.now(ZoneInfo(self.timezone)) + timedelta(seconds=self.clock_offset_s)

    def strings(self) -> dict[int, str]:
        return {1: "Sim Recorders Co.", 2: f"DSJ-SIM ({self.personality})", 3: self.serial}

    # --- control transfers -------------------------------------------------------------------

    def control(
        self,
        req_type: int,
        request: int,
        value: int,
        index: int,
        data: bytes,
        length: int,
        timeout_ms: int,
    ) -> bytes | int:
        """One control transfer: returns the IN data, or the count written for OUT."""
        with self._lock:
            self.transfers.append(
                {
                    "type": req_type,
                    "request": request,
                    "value": value,
                    "index": index,
                    "data": data.hex(),
                    "length": length,
                }
            )
        if req_type == 0x80 and request == GET_DESCRIPTOR:
            return self._string_descriptor(value, length)
        if req_type & 0x60 != 0x40:
            raise stall(f"unsupported request type 0x{req_type:02x}")
        if self.unresponsive:
            time.sleep(timeout_ms / 1000.0)
            raise usb.core.USBTimeoutError("Operation timed out", None, errno.ETIMEDOUT)
        command = self._command_name(req_type, request)
        if command is not None and command == self.vanish_on:
            self._vanish()
            raise no_device()
        handler = self._zfy if self.personality == "zfy" else self._ambarella
        with self._lock:
            return handler(req_type & 0x80 != 0, request, data, length)

    def _command_name(self, req_type: int, request: int) -> str | None:
        if self.personality == "ambarella":
            if request == AMB_LOGIN and not req_type & 0x80:
                return "login"
            return "storage_mode" if request == AMB_STORAGE else None
        names = {
            REQ_INFO: "info",
            REQ_BATTERY: "battery",
            REQ_CLOCK_GET: "clock_get",
            REQ_CLOCK_SET: "clock_set",
            REQ_LOGIN: "login",
            REQ_STORAGE: "storage_mode",
        }
        return names.get(request)

    def _string_descriptor(self, value: int, length: int) -> bytes:
        if value >> 8 != 3:
            raise stall("descriptor type")
        idx = value & 0xFF
        if idx == 0:
            body = (0x0409).to_bytes(2, "little")
        elif idx in self.strings():
            body = self.strings()[idx].encode("utf-16-le")
        else:
            raise stall(f"string {idx}")
        return (bytes([len(body) + 2, 3]) + body)[:length]

    def _zfy(self, is_in: bool, request: int, data: bytes, length: int) -> bytes | int:
        if is_in and request == REQ_INFO:
            if self.info_reply is not None:
                return self.info_reply[:length]
            values = {
                "serial": self.serial,
                "officer_id": self.officer_id,
                "officer_name": self.officer_name,
                "unit_id": self.unit_id,
                "unit_name": self.unit_name,
            }
            return b"".join(gbk_field(values[name], size) for name, size in ZFY_INFO)[:length]
        if is_in and request == REQ_BATTERY:
            return bytes([max(0, min(100, self.battery_pct)), int(self.charging)])[:length]
        if is_in and request == REQ_CLOCK_GET:
            return self.clock().strftime("%Y%m%d%H%M%S").encode("ascii")[:length]
        if is_in and request == REQ_LOGIN:
            return bytes([int(self.logged_in), int(self.locked), self.failed_logins, 0])[:length]
        if not is_in and request == REQ_LOGIN:
            self._login(data.rstrip(b"\0"))
            return len(data)
        if not is_in and request == REQ_CLOCK_SET:
            if not self.logged_in:
                raise stall("clock set before login")
            self._set_clock(data.rstrip(b"\0").decode("ascii", errors="replace"))
            return len(data)
        if not is_in and request == REQ_STORAGE:
            if not self.logged_in:
                raise stall("storage mode before login")
            self._enter_storage_mode()
            return len(data)
        raise stall(f"unknown request 0x{request:02x}")

    def _ambarella(self, is_in: bool, request: int, data: bytes, length: int) -> bytes | int:
        if request == AMB_LOGIN and is_in:
            return bytes([0xA1, 0x12, int(self.logged_in)]).ljust(10, b"\0")[:length]
        if request == AMB_LOGIN:
            if data[:4] != bytes.fromhex("a1120012") or len(data) != 64:
                raise stall("malformed login packet")
            self._login(data[4:].rstrip(b"\0"))
            return len(data)
        if request == AMB_STORAGE and not is_in:
            if data[:4] == bytes.fromhex("a1230023") and self.logged_in:
                self._enter_storage_mode()
            return len(data)  # the camera acknowledges everything; it just does nothing
        raise stall(f"unknown request {request}")

    def _login(self, password: bytes) -> None:
        self.login_attempts += 1
        if self.locked:
            self.logged_in = False
            return
        self.logged_in = password == self.password.encode("utf-8")
        if not self.logged_in:
            self.failed_logins += 1
            self.locked = self.failed_logins >= self.max_login_attempts

    def _set_clock(self, text: str) -> None:
        try:
            naive = datetime.strptime(text, "%Y%m%d%H%M%S")
        except ValueError:
            raise stall(f"bad clock value {text!r}") from None
        when = naive.replace(tzinfo=ZoneInfo(self.timezone))
        self.clock_offset_s = (when - datetime.now(ZoneInfo(self.timezone))).total_seconds()
        self.clock_sets.append(when)

    def _enter_storage_mode(self) -> None:
        if self.in_storage_mode:
            return
        self.in_storage_mode = True
        # The device acknowledges, then drops off the bus and comes back as mass storage.
        timer = threading.Timer(self.reenumerate_s, self._reenumerate)
        timer.daemon = True
        timer.start()

    def _reenumerate(self) -> None:
        self._vanish()
        if self.on_storage_mode is not None:
            self.on_storage_mode(self)

    def _vanish(self) -> None:
        detach, self._detach = self._detach, None
        if detach is not None:
            detach()
