"""A pyusb backend that forwards every USB call over a Unix socket (`backend = "sim:PATH"`).

The agent under test often runs in another process than the simulated recorders (demo, kill
harness, `simulate dock`), so the simulator exports its pyusb backend on a Unix socket and the
driver plugs this forwarding backend into the very same `usb.core.find()` / `ctrl_transfer()`
calls it makes against libusb. Only the transport differs; errors come back as the same
`usb.core.USBError` (with errno) and `USBTimeoutError` libusb would raise.

Wire format: one JSON object per line each way. Request `{"op": <IBackend method>, ...}`;
reply `{"ok": true, ...}` or `{"ok": false, "error": text, "errno": n, "timeout": bool}`.
Descriptors travel as dicts of their fields (`descriptor_fields`); byte payloads as hex.
"""

from __future__ import annotations

import array
import errno
import json
import socket
import threading
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

DEVICE_FIELDS = (
    "bLength", "bDescriptorType", "bcdUSB", "bDeviceClass", "bDeviceSubClass",
    "bDeviceProtocol", "bMaxPacketSize0", "idVendor", "idProduct", "bcdDevice",
    "iManufacturer", "iProduct", "iSerialNumber", "bNumConfigurations", "address", "bus",
    "port_number", "port_numbers", "speed",
)  # fmt: skip
CONFIG_FIELDS = (
    "bLength", "bDescriptorType", "wTotalLength", "bNumInterfaces", "bConfigurationValue",
    "iConfiguration", "bmAttributes", "bMaxPower", "extra_descriptors",
)  # fmt: skip
INTERFACE_FIELDS = (
    "bLength", "bDescriptorType", "bInterfaceNumber", "bAlternateSetting", "bNumEndpoints",
    "bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol", "iInterface",
    "extra_descriptors",
)  # fmt: skip
ENDPOINT_FIELDS = (
    "bLength", "bDescriptorType", "bEndpointAddress", "bmAttributes", "wMaxPacketSize",
    "bInterval", "bRefresh", "bSynchAddress", "extra_descriptors",
)  # fmt: skip

MAX_LINE = 1 << 20


def descriptor_fields(desc: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for f in fields:
        v = getattr(desc, f, None)
        out[f] = list(v) if isinstance(v, tuple | list | array.array) else v
    return out


def descriptor(fields: dict[str, Any]) -> SimpleNamespace:
    ns = SimpleNamespace(**fields)
    if isinstance(getattr(ns, "port_numbers", None), list):
        ns.port_numbers = tuple(ns.port_numbers)
    if getattr(ns, "extra_descriptors", None) is None and "extra_descriptors" in fields:
        ns.extra_descriptors = []
    return ns


def error_reply(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, usb.core.USBTimeoutError):
        return {"ok": False, "error": str(exc), "errno": errno.ETIMEDOUT, "timeout": True}
    if isinstance(exc, usb.core.USBError):
        return {"ok": False, "error": exc.strerror or str(exc), "errno": exc.errno}
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "errno": errno.EIO}


def raise_reply(reply: dict[str, Any]) -> None:
    if reply.get("ok"):
        return
    if reply.get("timeout"):
        raise usb.core.USBTimeoutError(reply.get("error", "timeout"), None, errno.ETIMEDOUT)
    raise usb.core.USBError(reply.get("error", "error"), None, reply.get("errno"))


class _RemoteDev:
    """What enumerate_devices() yields: an id plus the descriptor tree, fetched once."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.id: str = data["id"]
        self.desc = descriptor(data["device"])
        self.configs = data["configs"]


class RemoteBackend(usb.backend.IBackend):
    """IBackend over a Unix socket to a simulator exporting its backend (simulators/usb_backend)."""

    def __init__(self, path: str, connect_timeout: float = 5.0) -> None:
        super().__init__()
        self.path = path
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._lock = threading.Lock()

    # --- transport --------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.connect_timeout)
        try:
            s.connect(self.path)
        except OSError as exc:
            s.close()
            raise usb.core.USBError(
                f"USB simulator socket {self.path} unreachable ({exc.strerror or exc}); "
                "is `evidence-agent simulate dock` running?",
                None,
                errno.ECONNREFUSED,
            ) from None
        self._buf = b""
        return s

    def call(self, op: str, timeout_ms: int | None = None, **args: Any) -> dict[str, Any]:
        with self._lock:
            if self._sock is None:
                self._sock = self._connect()
            sock = self._sock
            sock.settimeout(((timeout_ms or 1000) / 1000.0) + 10.0)
            try:
                sock.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
                reply = self._read_line(sock)
            except (OSError, ValueError) as exc:
                self._drop()
                # The simulator process went away: for the driver that is an unplugged bus.
                raise usb.core.USBError(
                    f"USB simulator socket {self.path}: {exc}", None, errno.ENODEV
                ) from None
        raise_reply(reply)
        return reply

    def _read_line(self, sock: socket.socket) -> dict[str, Any]:
        while b"\n" not in self._buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("simulator closed the connection")
            self._buf += chunk
            if len(self._buf) > MAX_LINE:
                raise ValueError("reply line too long")
        line, self._buf = self._buf.split(b"\n", 1)
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise ValueError("reply is not a JSON object")
        return reply

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- IBackend -----------------------------------------------------------------------------

    def enumerate_devices(self) -> list[_RemoteDev]:
        return [_RemoteDev(d) for d in self.call("enumerate_devices")["devices"]]

    def get_device_descriptor(self, dev: _RemoteDev) -> SimpleNamespace:
        return dev.desc

    def get_configuration_descriptor(self, dev: _RemoteDev, config: int) -> SimpleNamespace:
        return descriptor(_pick(dev.configs, config, dev.id)["desc"])

    def get_interface_descriptor(
        self, dev: _RemoteDev, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        cfg = _pick(dev.configs, config, dev.id)
        return descriptor(_pick(cfg["interfaces"], _flat(cfg, intf, alt), dev.id)["desc"])

    def get_endpoint_descriptor(
        self, dev: _RemoteDev, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        cfg = _pick(dev.configs, config, dev.id)
        it = _pick(cfg["interfaces"], _flat(cfg, intf, alt), dev.id)
        return descriptor(_pick(it["endpoints"], ep, dev.id))

    def open_device(self, dev: _RemoteDev) -> str:
        return str(self.call("open_device", dev=dev.id)["handle"])

    def close_device(self, dev_handle: str) -> None:
        try:
            self.call("close_device", handle=dev_handle)
        except usb.core.USBError:
            pass  # closing a handle of a vanished device is not an error worth raising

    def set_configuration(self, dev_handle: str, config_value: int) -> None:
        self.call("set_configuration", handle=dev_handle, value=config_value)

    def get_configuration(self, dev_handle: str) -> int:
        return int(self.call("get_configuration", handle=dev_handle)["value"])

    def set_interface_altsetting(self, dev_handle: str, intf: int, altsetting: int) -> None:
        self.call("set_interface_altsetting", handle=dev_handle, intf=intf, alt=altsetting)

    def claim_interface(self, dev_handle: str, intf: int) -> None:
        self.call("claim_interface", handle=dev_handle, intf=intf)

    def release_interface(self, dev_handle: str, intf: int) -> None:
        self.call("release_interface", handle=dev_handle, intf=intf)

    def bulk_write(self, dev_handle: str, ep: int, intf: int, data: Any, timeout: int) -> int:
        args = {"handle": dev_handle, "ep": ep, "intf": intf, "data": bytes(data).hex()}
        return int(self.call("bulk_write", timeout, timeout=timeout, **args)["written"])

    def bulk_read(self, dev_handle: str, ep: int, intf: int, buff: Any, timeout: int) -> int:
        args = {"handle": dev_handle, "ep": ep, "intf": intf, "length": len(buff)}
        return _fill(buff, self.call("bulk_read", timeout, timeout=timeout, **args)["data"])

    def ctrl_transfer(
        self,
        dev_handle: str,
        bmRequestType: int,  # noqa: N803 - pyusb's parameter names
        bRequest: int,  # noqa: N803
        wValue: int,  # noqa: N803
        wIndex: int,  # noqa: N803
        data: Any,
        timeout: int,
    ) -> int:
        args: dict[str, Any] = {
            "handle": dev_handle,
            "bmRequestType": bmRequestType,
            "bRequest": bRequest,
            "wValue": wValue,
            "wIndex": wIndex,
            "timeout": timeout,
        }
        if bmRequestType & 0x80:
            args["length"] = len(data)
            return _fill(data, self.call("ctrl_transfer", timeout, **args)["data"])
        args["data"] = bytes(data).hex()
        return int(self.call("ctrl_transfer", timeout, **args)["written"])

    def clear_halt(self, dev_handle: str, ep: int) -> None:
        self.call("clear_halt", handle=dev_handle, ep=ep)

    def reset_device(self, dev_handle: str) -> None:
        self.call("reset_device", handle=dev_handle)

    def is_kernel_driver_active(self, dev_handle: str, intf: int) -> bool:
        return bool(self.call("is_kernel_driver_active", handle=dev_handle, intf=intf)["active"])

    def detach_kernel_driver(self, dev_handle: str, intf: int) -> None:
        self.call("detach_kernel_driver", handle=dev_handle, intf=intf)

    def attach_kernel_driver(self, dev_handle: str, intf: int) -> None:
        self.call("attach_kernel_driver", handle=dev_handle, intf=intf)


def _pick(items: list[Any], i: int, dev_id: str) -> Any:
    if not 0 <= i < len(items):
        raise usb.core.USBError(f"device {dev_id}: no descriptor {i}", None, errno.ENOENT)
    return items[i]


def _flat(cfg: dict[str, Any], intf: int, alt: int) -> int:
    """Position of (interface, alt setting) in the flat list pyusb's index refers to."""
    # pyusb passes the interface's position in the configuration and the alt setting; the
    # exported list holds every (interface, alt) pair in descriptor order.
    for pos, it in enumerate(cfg["interfaces"]):
        d = it["desc"]
        if d["bInterfaceNumber"] == intf and d["bAlternateSetting"] == alt:
            return pos
    return intf


def _fill(buff: Any, hex_data: str) -> int:
    data = bytes.fromhex(hex_data)[: len(buff)]
    for i, b in enumerate(data):
        buff[i] = b
    return len(data)
