"""A real pyusb backend (`usb.backend.IBackend`) whose bus holds simulated recorders.

`SimBus` is the hub: recorders are plugged into ports and get a fresh address each time, as
on real USB; a device that is unplugged (or re-enumerates into mass storage) makes every
further call on its handle fail with ENODEV, exactly as libusb does. `SimBackend` is what
`usb.core.find(backend=...)` takes in-process; `UsbSimServer` exports any backend on a Unix
socket so an agent in another process reaches it with `backend = "sim:<path>"`
(drivers/usb_remote.py is the other end).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socketserver
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from drivers.usb_remote import (
    CONFIG_FIELDS,
    DEVICE_FIELDS,
    ENDPOINT_FIELDS,
    INTERFACE_FIELDS,
    MAX_LINE,
    descriptor_fields,
    error_reply,
)
from simulators.usb_recorder import SimUsbRecorder, no_device

logger = logging.getLogger(__name__)


@dataclass
class _Slot:
    recorder: SimUsbRecorder
    bus: int
    address: int
    port: int

    @property
    def id(self) -> str:
        return f"{self.bus}-{self.address}"


class SimBus:
    """Ports with simulated recorders; thread-safe; addresses change on every plug-in."""

    def __init__(self, bus_number: int = 1) -> None:
        self.bus_number = bus_number
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._next_address = 2

    def plug(self, recorder: SimUsbRecorder, port: int) -> str:
        with self._lock:
            address = self._next_address
            self._next_address = 2 if address >= 127 else address + 1
            slot = _Slot(recorder, self.bus_number, address, port)
            self._slots[slot.id] = slot
        recorder.attached(lambda: self._remove(slot.id))
        logger.info("usb sim: %s plugged into port %d (address %d)", recorder.serial, port, address)
        return slot.id

    def unplug(self, recorder: SimUsbRecorder) -> None:
        with self._lock:
            ids = [k for k, s in self._slots.items() if s.recorder is recorder]
            for k in ids:
                del self._slots[k]

    def _remove(self, slot_id: str) -> None:
        with self._lock:
            self._slots.pop(slot_id, None)

    def slots(self) -> list[_Slot]:
        with self._lock:
            return list(self._slots.values())

    def get(self, slot_id: str) -> _Slot | None:
        with self._lock:
            return self._slots.get(slot_id)


def _device_descriptor(slot: _Slot) -> SimpleNamespace:
    rec = slot.recorder
    return SimpleNamespace(
        bLength=18,
        bDescriptorType=1,
        bcdUSB=0x0200,
        bDeviceClass=0,
        bDeviceSubClass=0,
        bDeviceProtocol=0,
        bMaxPacketSize0=64,
        idVendor=rec.vid,
        idProduct=rec.pid,
        bcdDevice=0x0100,
        iManufacturer=1,
        iProduct=2,
        iSerialNumber=3,
        bNumConfigurations=1,
        address=slot.address,
        bus=slot.bus,
        port_number=slot.port,
        port_numbers=(slot.port,),
        speed=3,
    )


_CONFIG = SimpleNamespace(
    bLength=9,
    bDescriptorType=2,
    wTotalLength=32,
    bNumInterfaces=1,
    bConfigurationValue=1,
    iConfiguration=0,
    bmAttributes=0x80,
    bMaxPower=250,
    extra_descriptors=[],
)
_INTERFACE = SimpleNamespace(
    bLength=9,
    bDescriptorType=4,
    bInterfaceNumber=0,
    bAlternateSetting=0,
    bNumEndpoints=2,
    bInterfaceClass=0xFF,
    bInterfaceSubClass=0,
    bInterfaceProtocol=0,
    iInterface=0,
    extra_descriptors=[],
)
_ENDPOINTS = [
    SimpleNamespace(
        bLength=7,
        bDescriptorType=5,
        bEndpointAddress=addr,
        bmAttributes=2,
        wMaxPacketSize=512,
        bInterval=0,
        bRefresh=0,
        bSynchAddress=0,
        extra_descriptors=[],
    )
    for addr in (0x01, 0x81)
]


class _Dev:
    def __init__(self, slot: _Slot) -> None:
        self.slot_id = slot.id
        self.desc = _device_descriptor(slot)


class _Handle:
    def __init__(self, slot_id: str) -> None:
        self.slot_id = slot_id
        self.configuration = 1
        self.bulk: bytes = b""  # bulk OUT data echoed back on bulk IN (loopback)


class SimBackend(usb.backend.IBackend):
    """The pyusb backend of a SimBus: pass it as `usb.core.find(backend=...)`."""

    def __init__(self, bus: SimBus) -> None:
        super().__init__()
        self.bus = bus

    def _slot(self, slot_id: str) -> _Slot:
        slot = self.bus.get(slot_id)
        if slot is None:
            raise no_device()
        return slot

    def enumerate_devices(self) -> list[_Dev]:
        return [_Dev(s) for s in self.bus.slots()]

    def get_device_descriptor(self, dev: _Dev) -> SimpleNamespace:
        return dev.desc

    def get_configuration_descriptor(self, dev: _Dev, config: int) -> SimpleNamespace:
        if config != 0:
            raise usb.core.USBError("Entity not found", None, errno.ENOENT)
        return _CONFIG

    def get_interface_descriptor(
        self, dev: _Dev, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        if (intf, alt, config) != (0, 0, 0):
            raise usb.core.USBError("Entity not found", None, errno.ENOENT)
        return _INTERFACE

    def get_endpoint_descriptor(
        self, dev: _Dev, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(_ENDPOINTS):
            raise usb.core.USBError("Entity not found", None, errno.ENOENT)
        return _ENDPOINTS[ep]

    def open_device(self, dev: _Dev) -> _Handle:
        self._slot(dev.slot_id)
        return _Handle(dev.slot_id)

    def close_device(self, dev_handle: _Handle) -> None:
        pass

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        self._slot(dev_handle.slot_id)
        dev_handle.configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        self._slot(dev_handle.slot_id)
        return dev_handle.configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        self._slot(dev_handle.slot_id)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        self._slot(dev_handle.slot_id)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        pass

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        pass

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        pass

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        self._slot(dev_handle.slot_id)

    def reset_device(self, dev_handle: _Handle) -> None:
        self._slot(dev_handle.slot_id)

    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: Any, timeout: int) -> int:
        self._slot(dev_handle.slot_id)
        dev_handle.bulk += bytes(data)
        return len(data)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        self._slot(dev_handle.slot_id)
        n = min(len(buff), len(dev_handle.bulk))
        for i in range(n):
            buff[i] = dev_handle.bulk[i]
        dev_handle.bulk = dev_handle.bulk[n:]
        return n

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,  # noqa: N803 - pyusb's parameter names
        bRequest: int,  # noqa: N803
        wValue: int,  # noqa: N803
        wIndex: int,  # noqa: N803
        data: Any,
        timeout: int,
    ) -> int:
        slot = self._slot(dev_handle.slot_id)
        is_in = bool(bmRequestType & 0x80)
        payload = b"" if is_in else bytes(data)
        result = slot.recorder.control(
            bmRequestType, bRequest, wValue, wIndex, payload, len(data) if is_in else 0, timeout
        )
        if isinstance(result, int):
            return result
        for i, b in enumerate(result[: len(data)]):
            data[i] = b
        return min(len(result), len(data))


# --- export over a Unix socket ----------------------------------------------------------------


class _Exporter:
    """Serves IBackend calls for one backend; device and handle objects stay on this side."""

    def __init__(self, backend: usb.backend.IBackend) -> None:
        self.backend = backend
        self.devs: dict[str, Any] = {}
        self.handles: dict[str, Any] = {}
        self.lock = threading.Lock()
        self._next = 0

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        try:
            if op == "enumerate_devices":
                return {"ok": True, "devices": [self._export(d) for d in self._enumerate()]}
            if op == "open_device":
                h = self.backend.open_device(self.devs[req["dev"]])
                with self.lock:
                    self._next += 1
                    key = f"h{self._next}"
                    self.handles[key] = h
                return {"ok": True, "handle": key}
            return self._on_handle(op, req)
        except KeyError as exc:
            return {"ok": False, "error": f"unknown object {exc}", "errno": errno.ENODEV}
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            return error_reply(exc)

    def _enumerate(self) -> list[Any]:
        devs = list(self.backend.enumerate_devices())
        with self.lock:
            for d in devs:
                self.devs[getattr(d, "slot_id", str(id(d)))] = d
        return devs

    def _export(self, dev: Any) -> dict[str, Any]:
        b = self.backend
        desc = b.get_device_descriptor(dev)
        configs = []
        for c in range(desc.bNumConfigurations):
            cd = b.get_configuration_descriptor(dev, c)
            intfs = []
            for i in range(cd.bNumInterfaces):
                idesc = b.get_interface_descriptor(dev, i, 0, c)
                eps = [
                    descriptor_fields(b.get_endpoint_descriptor(dev, e, i, 0, c), ENDPOINT_FIELDS)
                    for e in range(idesc.bNumEndpoints)
                ]
                intfs.append({"desc": descriptor_fields(idesc, INTERFACE_FIELDS), "endpoints": eps})
            configs.append({"desc": descriptor_fields(cd, CONFIG_FIELDS), "interfaces": intfs})
        dev_id = getattr(dev, "slot_id", str(id(dev)))
        return {"id": dev_id, "device": descriptor_fields(desc, DEVICE_FIELDS), "configs": configs}

    def _on_handle(self, op: Any, req: dict[str, Any]) -> dict[str, Any]:
        b = self.backend
        if op == "close_device":
            with self.lock:
                h = self.handles.pop(req["handle"], None)
            if h is not None:
                b.close_device(h)
            return {"ok": True}
        h = self.handles[req["handle"]]
        if op == "ctrl_transfer":
            return self._ctrl(h, req)
        if op == "bulk_write":
            data = bytes.fromhex(req["data"])
            return {
                "ok": True,
                "written": b.bulk_write(h, req["ep"], req["intf"], data, req["timeout"]),
            }
        if op == "bulk_read":
            buff = bytearray(req["length"])
            n = b.bulk_read(h, req["ep"], req["intf"], buff, req["timeout"])
            return {"ok": True, "data": bytes(buff[:n]).hex()}
        if op == "get_configuration":
            return {"ok": True, "value": b.get_configuration(h)}
        if op == "is_kernel_driver_active":
            return {"ok": True, "active": bool(b.is_kernel_driver_active(h, req["intf"]))}
        simple = {
            "set_configuration": lambda: b.set_configuration(h, req["value"]),
            "set_interface_altsetting": lambda: b.set_interface_altsetting(
                h, req["intf"], req["alt"]
            ),
            "claim_interface": lambda: b.claim_interface(h, req["intf"]),
            "release_interface": lambda: b.release_interface(h, req["intf"]),
            "clear_halt": lambda: b.clear_halt(h, req["ep"]),
            "reset_device": lambda: b.reset_device(h),
            "detach_kernel_driver": lambda: b.detach_kernel_driver(h, req["intf"]),
            "attach_kernel_driver": lambda: b.attach_kernel_driver(h, req["intf"]),
        }
        if op not in simple:
            return {"ok": False, "error": f"unknown op {op!r}", "errno": errno.ENOSYS}
        simple[op]()
        return {"ok": True}

    def _ctrl(self, h: Any, req: dict[str, Any]) -> dict[str, Any]:
        args = (req["bmRequestType"], req["bRequest"], req["wValue"], req["wIndex"])
        if req["bmRequestType"] & 0x80:
            buff = bytearray(req["length"])
            n = self.backend.ctrl_transfer(h, *args, buff, req["timeout"])
            return {"ok": True, "data": bytes(buff[:n]).hex()}
        data = bytearray.fromhex(req["data"])
        return {"ok": True, "written": self.backend.ctrl_transfer(h, *args, data, req["timeout"])}


class UsbSimServer:
    """Export a backend on a Unix socket (one thread per connection)."""

    def __init__(self, backend: usb.backend.IBackend, path: Path) -> None:
        self.path = Path(path)
        exporter = _Exporter(backend)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    line = self.rfile.readline(MAX_LINE)
                    if not line:
                        return
                    try:
                        req = json.loads(line)
                        reply = exporter.handle(req if isinstance(req, dict) else {})
                    except ValueError as exc:
                        reply = {"ok": False, "error": f"bad request: {exc}", "errno": 22}
                    self.wfile.write(json.dumps(reply).encode() + b"\n")

        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        self.server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        self.server.daemon_threads = True
        os.chmod(self.path, 0o660)
        self._thread: threading.Thread | None = None

    def start(self) -> UsbSimServer:
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="usb-sim-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
