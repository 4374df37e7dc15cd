"""ZFY-style USB recorders: vendor control transfers driven by a profile (drivers/profiles).

Identify (ZFY_INFO block or the USB serial string), battery, clock get/set, login with the
admin password from the credentials, and the switch to mass storage, all through pyusb. The
same code runs against libusb on a station and against the simulator's backend in tests
(`backend = "sim:<socket>"`). A wrong password raises DeviceAuthError once; this driver never
retries a login by itself (recorders lock after a few wrong attempts).
"""

from __future__ import annotations

import errno
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import Field

from drivers.base import (
    DeviceAuthError,
    DeviceError,
    DeviceIdentity,
    DeviceStatus,
    Driver,
    DriverEnv,
    DriverSettings,
)
from drivers.text import decode_field, escape_text, valid_serial
from drivers.usb_profile import InCommand, Match, OutCommand, Reply, UsbProfile, load_profile

logger = logging.getLogger(__name__)

T = TypeVar("T")
_GONE = {errno.ENODEV, errno.ENOENT, errno.EIO, errno.ESHUTDOWN, errno.ENXIO}


class ZfyUsbSettings(DriverSettings):
    type: Literal["zfy_usb"] = "zfy_usb"
    profile: str = Field(
        "zfy", description="Built-in profile name (zfy, ambarella) or path of a profile TOML."
    )
    backend: str = Field(
        "libusb",
        pattern=r"^(libusb|sim:.+)$",
        description='"libusb" (the system\'s libusb-1.0) or "sim:<unix socket>" to reach a '
        "simulator process.",
    )
    password_credential: str = Field(
        "zfy_admin_password",
        description="Name of the credential holding the recorders' admin password.",
    )
    match: list[Match] | None = Field(
        None, description="VID/PID pairs to use instead of the profile's ([{vid=, pid=}])."
    )
    timeout_ms: int | None = Field(
        None, gt=0, le=60000, description="Per-transfer timeout (default: the profile's)."
    )

    def resolve_paths(self, base: Path) -> None:
        if self.profile.endswith(".toml") and not Path(self.profile).is_absolute():
            self.profile = str((base / self.profile).resolve())
        if self.backend.startswith("sim:") and not Path(self.backend[4:]).is_absolute():
            self.backend = f"sim:{(base / self.backend[4:]).resolve()}"


class ZfyUsbDriver(Driver):
    type_name = "zfy_usb"
    settings: ZfyUsbSettings

    def __init__(
        self, settings: DriverSettings, env: DriverEnv | None = None, usb_backend: Any = None
    ) -> None:
        """`usb_backend`: an IBackend object to use instead of `settings.backend` (tests)."""
        super().__init__(settings, env)
        self.profile: UsbProfile = load_profile(self.settings.profile)
        self.timeout = self.settings.timeout_ms or self.profile.transfer.timeout_ms
        self._backend: Any = usb_backend
        self._devices: dict[str, Any] = {}
        self._logged_in: set[str] = set()
        self._serials: dict[str, str] = {}

    @property
    def label(self) -> str:
        return self.settings.name or f"zfy_usb/{self.profile.name}"

    # --- transport ----------------------------------------------------------------------------

    def _get_backend(self) -> Any:
        if self._backend is None and self.settings.backend.startswith("sim:"):
            from drivers.usb_remote import RemoteBackend

            self._backend = RemoteBackend(self.settings.backend[4:])
        return self._backend

    def discover(self) -> list[str]:
        import usb.core

        backend = self._get_backend()
        found: dict[str, Any] = {}
        try:
            for m in self.settings.match or self.profile.match:
                for dev in usb.core.find(
                    find_all=True, backend=backend, idVendor=m.vid, idProduct=m.pid
                ):
                    ports = ".".join(str(p) for p in (dev.port_numbers or ()))
                    found[f"{dev.bus}-{ports or '0'}:{dev.address}"] = dev
        except usb.core.NoBackendError:
            raise DeviceError(
                f"{self.label}: no libusb on this station (install libusb-1.0-0) or set "
                'backend = "sim:<socket>" for a simulator',
                code="backend",
            ) from None
        except usb.core.USBError as exc:
            raise DeviceError(
                f"{self.label}: cannot list USB devices: {exc}", code="backend"
            ) from None
        for gone in set(self._devices) - set(found):
            self.forget(gone)
        self._devices.update(found)
        return sorted(found)

    def forget(self, handle: str) -> None:
        import usb.util

        dev = self._devices.pop(handle, None)
        self._logged_in.discard(handle)
        self._serials.pop(handle, None)
        if dev is not None:
            try:
                usb.util.dispose_resources(dev)
            except Exception:  # noqa: BLE001 - the device is gone; nothing to release
                pass

    def _dev(self, handle: str) -> Any:
        dev = self._devices.get(handle)
        if dev is None:
            raise DeviceError(
                f"{self._who(handle)}: no longer attached", code="disconnected", gone=True
            )
        return dev

    def _who(self, handle: str) -> str:
        serial = self._serials.get(handle)
        return f"{self.label} recorder at USB {handle}" + (f" ({serial})" if serial else "")

    def _call(self, handle: str, what: str, fn: Callable[[], T]) -> T:
        """Run one transfer; translate USB errors into DeviceErrors that say what to do."""
        import usb.core

        try:
            return fn()
        except usb.core.USBTimeoutError:
            raise DeviceError(
                f"{self._who(handle)}: no answer to {what} within {self.timeout} ms; "
                "re-seat the recorder in its bay",
                code="timeout",
            ) from None
        except usb.core.USBError as exc:
            if exc.errno in _GONE:
                raise DeviceError(
                    f"{self._who(handle)}: disconnected during {what} ({exc.strerror or exc})",
                    code="disconnected",
                    gone=True,
                ) from None
            if exc.errno == errno.EPIPE:
                raise DeviceError(
                    f"{self._who(handle)}: refused {what} (request stalled); check that "
                    f"profile {self.profile.name!r} matches this recorder",
                    code="refused",
                ) from None
            raise DeviceError(f"{self._who(handle)}: {what} failed: {exc}", code="usb") from None

    def _read(self, handle: str, what: str, cmd: InCommand | Reply, exact: bool = True) -> bytes:
        dev = self._dev(handle)
        raw = self._call(
            handle,
            what,
            lambda: dev.ctrl_transfer(
                self.profile.transfer.in_type,
                cmd.request,
                cmd.value,
                cmd.index,
                cmd.length,
                self.timeout,
            ),
        )
        data = bytes(raw)
        if exact and len(data) != cmd.length:
            raise DeviceError(
                f"{self._who(handle)}: reply to {what} has {len(data)} bytes, expected "
                f"{cmd.length} (garbled or truncated); re-seat the recorder",
                code="garbled",
            )
        return data

    def _write(self, handle: str, what: str, cmd: OutCommand, payload: bytes) -> None:
        dev = self._dev(handle)
        self._call(
            handle,
            what,
            lambda: dev.ctrl_transfer(
                self.profile.transfer.out_type,
                cmd.request,
                cmd.value,
                cmd.index,
                payload,
                self.timeout,
            ),
        )

    # --- the interface ------------------------------------------------------------------------

    def identify(self, handle: str) -> DeviceIdentity:
        info = self.profile.info
        port = f"usb {handle.split(':')[0]}"
        if info is None:
            return self._identify_by_descriptor(handle, port)
        raw = self._read(handle, "info", info)
        fields: dict[str, str] = {}
        notes: list[str] = []
        pos = 0
        for name, size in info.fields:
            text, problem = decode_field(raw[pos : pos + size], info.encoding)
            pos += size
            fields[name] = text
            if problem:
                notes.append(f"info field {name} has {problem}; shown as {text!r}")
        serial = fields["serial"]
        if not valid_serial(serial):
            raise DeviceError(
                f"{self._who(handle)}: info block carries no usable serial ({serial!r}, bytes "
                f"{raw[: dict(info.fields)['serial']].hex()}); the volume's device info file "
                "will identify it",
                code="garbled",
            )
        self._serials[handle] = serial
        for n in notes:
            logger.warning("%s: %s", self._who(handle), n)
        return DeviceIdentity(
            vendor=self.profile.vendor,
            serial=serial,
            source="usb",
            port=port,
            officer_id=fields.get("officer_id") or None,
            officer_name=fields.get("officer_name") or None,
            unit_id=fields.get("unit_id") or None,
            unit_name=fields.get("unit_name") or None,
            model=fields.get("model") or None,
            firmware=fields.get("firmware") or None,
            notes=notes,
        )

    def _identify_by_descriptor(self, handle: str, port: str) -> DeviceIdentity:
        import usb.util

        dev = self._dev(handle)
        serial = self._call(
            handle, "serial string", lambda: usb.util.get_string(dev, dev.iSerialNumber)
        )
        model = self._call(handle, "product string", lambda: usb.util.get_string(dev, dev.iProduct))
        shown = escape_text(serial or "").strip()
        if not valid_serial(shown):
            raise DeviceError(
                f"{self._who(handle)}: USB serial string {shown!r} is not a usable serial; the "
                "volume's device info file will identify it",
                code="garbled",
            )
        self._serials[handle] = shown
        return DeviceIdentity(
            vendor=self.profile.vendor,
            serial=shown,
            source="usb",
            port=port,
            model=escape_text(model) if model else None,
        )

    def status(self, handle: str) -> DeviceStatus:
        st = DeviceStatus()
        bat = self.profile.battery
        if bat is not None:
            raw = self._read(handle, "battery", bat)
            pct = raw[bat.percent_index]
            if pct > 100:
                raise DeviceError(
                    f"{self._who(handle)}: battery reading {pct}% is impossible (garbled reply)",
                    code="garbled",
                )
            st.battery_pct = pct
            if bat.charging_index is not None:
                st.charging = bool(raw[bat.charging_index] & bat.charging_mask)
        clk = self.profile.clock_get
        if clk is not None:
            text = self._read(handle, "clock", clk).rstrip(b"\0").decode("ascii", "replace")
            try:
                naive = datetime.strptime(text, clk.format)
            except ValueError:
                raise DeviceError(
                    f"{self._who(handle)}: clock reply {escape_text(text)!r} does not match "
                    f"{clk.format!r}",
                    code="garbled",
                ) from None
            st.clock = naive.replace(tzinfo=ZoneInfo(self.env.timezone))
        return st

    def set_clock(self, handle: str, when: datetime) -> None:
        cmd = self.profile.clock_set
        if cmd is None:
            super().set_clock(handle, when)
            return
        if cmd.needs_login:
            self._login(handle)
        local = when.astimezone(ZoneInfo(self.env.timezone))
        self._write(handle, "clock set", cmd, cmd.build_for(local))

    def storage_mode(self, handle: str) -> None:
        cmd = self.profile.storage_mode
        if cmd.needs_login:
            self._login(handle)
        self._write(handle, "storage mode", cmd, cmd.build())
        if cmd.reply is not None:
            self._check_reply(handle, "storage mode", cmd.reply)

    def secret_fingerprint(self) -> str | None:
        pw = self.env.secret(self.settings.password_credential)
        return None if pw is None else hashlib.sha256(pw.encode("utf-8")).hexdigest()[:16]

    def _login(self, handle: str) -> None:
        if handle in self._logged_in:
            return
        cmd = self.profile.login
        if cmd is None:
            return  # this vendor needs no login
        password = self.env.secret(self.settings.password_credential)
        if not password:
            raise DeviceError(
                f"{self._who(handle)}: needs the admin password, but credential "
                f"{self.settings.password_credential!r} is not set (credentials file or "
                "$CREDENTIALS_DIRECTORY)",
                code="no_credential",
            )
        try:
            payload = cmd.build(password=password)
        except ValueError as exc:
            raise DeviceError(
                f"{self._who(handle)}: password does not fit: {exc}", code="auth"
            ) from None
        self._write(handle, "login", cmd, payload)
        if not self._check_reply(handle, "login", cmd.reply):
            raise DeviceAuthError(
                f"{self._who(handle)}: wrong admin password (credential "
                f"{self.settings.password_credential!r}); not retried - fix the credential, "
                "then re-dock the recorder"
            )
        self._logged_in.add(handle)

    def _check_reply(self, handle: str, what: str, reply: Reply | None) -> bool:
        if reply is None:
            return True
        data = self._read(handle, f"{what} reply", reply, exact=False)
        if reply.ok_index is None:
            return True
        if len(data) <= reply.ok_index:
            raise DeviceError(
                f"{self._who(handle)}: {what} reply has {len(data)} bytes, too short to read "
                f"byte {reply.ok_index}",
                code="garbled",
            )
        return data[reply.ok_index] == reply.ok_value

    def close(self) -> None:
        for handle in list(self._devices):
            self.forget(handle)
        if self._backend is not None and hasattr(self._backend, "close"):
            self._backend.close()
