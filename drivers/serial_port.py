"""Recorders (or dock bays) with a CDC-ACM serial control port: a line protocol over pyserial.

Protocol (docs/drivers.md, "Serial line protocol"): the host sends one command per line
(`ID`, `BATTERY`, `TIME?`, `TIME <YYYYMMDDTHHMMSS>`, `STORAGE`); the device answers one line,
`OK[ key=value;key=value...]` or `ERR <CODE> <text>`; lines starting with `#` are unsolicited
device chatter and skipped. Values are UTF-8 with `%`, `;`, `=` and control characters
percent-escaped. Ports are opened exclusively (flock), so two agents, or an agent and a
terminal, never interleave commands on one recorder.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import termios
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import Field

from drivers.base import (
    DeviceError,
    DeviceIdentity,
    DeviceStatus,
    Driver,
    DriverEnv,
    DriverSettings,
)
from drivers.text import escape_text, valid_serial

logger = logging.getLogger(__name__)

TIME_FORMAT = "%Y%m%dT%H%M%S"
MAX_LINE = 512


class SerialSettings(DriverSettings):
    type: Literal["serial"] = "serial"
    ports: list[str] = Field(
        default_factory=lambda: ["/dev/ttyACM*"],
        description="Serial ports or glob patterns (e.g. /dev/serial/by-id/usb-*Recorder*).",
    )
    baudrate: int = Field(115200, gt=0, description="Line speed (CDC-ACM ignores it).")
    timeout_seconds: float = Field(2.0, gt=0, le=60, description="Reply timeout per command.")
    vendor: str = Field("generic", description="Vendor recorded when the ID reply has none.")

    def resolve_paths(self, base: Path) -> None:
        self.ports = [p if os.path.isabs(p) else str(base / p) for p in self.ports]


def parse_fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"field {escape_text(part)!r} is not key=value")
        out[key] = unquote(value, errors="backslashreplace")
    return out


class SerialDriver(Driver):
    type_name = "serial"
    settings: SerialSettings

    def __init__(self, settings: DriverSettings, env: DriverEnv | None = None) -> None:
        super().__init__(settings, env)
        self._ports: dict[str, Any] = {}
        self._serials: dict[str, str] = {}

    def discover(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.settings.ports:
            for path in glob.glob(pattern) if glob.has_magic(pattern) else [pattern]:
                if os.path.exists(path):  # a dangling by-id symlink is an unplugged device
                    found.add(path)
        for gone in set(self._ports) - found:
            self.forget(gone)
        return sorted(found)

    def forget(self, handle: str) -> None:
        port = self._ports.pop(handle, None)
        self._serials.pop(handle, None)
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - closing a vanished tty may fail; it is gone
                pass

    def _who(self, handle: str) -> str:
        serial = self._serials.get(handle)
        return f"{self.label} recorder on {handle}" + (f" ({serial})" if serial else "")

    def _open(self, handle: str) -> Any:
        import serial

        port = self._ports.get(handle)
        if port is not None:
            return port
        try:
            port = serial.Serial(
                handle,
                baudrate=self.settings.baudrate,
                timeout=self.settings.timeout_seconds,
                write_timeout=self.settings.timeout_seconds,
                exclusive=True,
            )
        except (serial.SerialException, OSError, termios.error) as exc:
            busy = "lock" in str(exc).lower() or getattr(exc, "errno", None) == errno.EBUSY
            raise DeviceError(
                f"{self._who(handle)}: cannot open: {exc}"
                + ("; another program holds the port" if busy else ""),
                code="busy" if busy else "disconnected",
                gone=not busy and not os.path.exists(handle),
            ) from None
        self._ports[handle] = port
        return port

    def command(self, handle: str, line: str) -> dict[str, str]:
        """Send one command; return the reply's fields. Raises DeviceError."""
        import serial

        what = line.split(" ", 1)[0]
        port = self._open(handle)
        try:
            port.reset_input_buffer()  # stale chatter must not be taken for this reply
            port.write(line.encode("utf-8") + b"\n")
            port.flush()
            reply = self._reply(handle, port, what)
        except serial.SerialTimeoutException:
            self.forget(handle)
            raise DeviceError(
                f"{self._who(handle)}: {what} could not be sent within "
                f"{self.settings.timeout_seconds} s",
                code="timeout",
            ) from None
        except (serial.SerialException, OSError, termios.error) as exc:
            # termios.error (not an OSError): tcflush/tcdrain on a tty whose device is gone.
            self.forget(handle)
            raise DeviceError(
                f"{self._who(handle)}: disconnected during {what} ({exc})",
                code="disconnected",
                gone=True,
            ) from None
        return reply

    def _reply(self, handle: str, port: Any, what: str) -> dict[str, str]:
        deadline = time.monotonic() + self.settings.timeout_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceError(
                    f"{self._who(handle)}: no answer to {what} within "
                    f"{self.settings.timeout_seconds} s; re-seat the recorder",
                    code="timeout",
                )
            port.timeout = remaining
            raw = port.read_until(b"\n", MAX_LINE)
            if not raw.endswith(b"\n"):
                if len(raw) >= MAX_LINE:
                    raise DeviceError(
                        f"{self._who(handle)}: reply to {what} longer than {MAX_LINE} bytes",
                        code="garbled",
                    )
                shown = escape_text(raw.decode("utf-8", "backslashreplace"))
                raise DeviceError(
                    f"{self._who(handle)}: no complete answer to {what} within "
                    f"{self.settings.timeout_seconds} s"
                    + (f" (got {shown!r}, truncated)" if raw else "; re-seat the recorder"),
                    code="garbled" if raw else "timeout",
                )
            text = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            if text.startswith("#") or not text:
                continue
            return self._parse(handle, what, text)

    def _parse(self, handle: str, what: str, text: str) -> dict[str, str]:
        if text == "OK" or text.startswith("OK "):
            try:
                return parse_fields(text[3:])
            except ValueError as exc:
                raise DeviceError(
                    f"{self._who(handle)}: garbled reply to {what}: {exc}", code="garbled"
                ) from None
        if text.startswith("ERR "):
            raise DeviceError(
                f"{self._who(handle)}: refused {what}: {escape_text(text[4:])}", code="refused"
            )
        raise DeviceError(
            f"{self._who(handle)}: garbled reply to {what}: {escape_text(text)[:80]!r}",
            code="garbled",
        )

    # --- the interface ------------------------------------------------------------------------

    def identify(self, handle: str) -> DeviceIdentity:
        f = self.command(handle, "ID")
        serial = escape_text(f.get("serial", "")).strip()
        if not valid_serial(serial):
            raise DeviceError(
                f"{self._who(handle)}: ID reply carries no usable serial ({serial!r})",
                code="garbled",
            )
        self._serials[handle] = serial
        notes = [f"ID field {k} has non-printable characters" for k, v in f.items() if "\\x" in v]
        return DeviceIdentity(
            vendor=f.get("vendor") or self.settings.vendor,
            serial=serial,
            source="serial",
            officer_id=f.get("officer_id") or None,
            officer_name=f.get("officer_name") or None,
            unit_id=f.get("unit_id") or None,
            unit_name=f.get("unit_name") or None,
            model=f.get("model") or None,
            firmware=f.get("firmware") or None,
            port=handle,
            notes=notes,
        )

    def status(self, handle: str) -> DeviceStatus:
        from zoneinfo import ZoneInfo

        st = DeviceStatus()
        bat = self.command(handle, "BATTERY")
        try:
            pct = int(bat["pct"])
            if not 0 <= pct <= 100:
                raise ValueError(pct)
            st.battery_pct = pct
            st.charging = bat.get("charging") == "1" if "charging" in bat else None
            clock = self.command(handle, "TIME?")["time"]
            st.clock = datetime.strptime(clock, TIME_FORMAT).replace(
                tzinfo=ZoneInfo(self.env.timezone)
            )
        except (KeyError, ValueError) as exc:
            raise DeviceError(
                f"{self._who(handle)}: garbled status reply ({exc!s})", code="garbled"
            ) from None
        return st

    def set_clock(self, handle: str, when: datetime) -> None:
        from zoneinfo import ZoneInfo

        local = when.astimezone(ZoneInfo(self.env.timezone))
        self.command(handle, f"TIME {local.strftime(TIME_FORMAT)}")

    def storage_mode(self, handle: str) -> None:
        self.command(handle, "STORAGE")

    def close(self) -> None:
        for handle in list(self._ports):
            self.forget(handle)
