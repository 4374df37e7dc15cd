"""Export a pyusb backend on a Unix socket: how an agent in another process reaches the
simulated recorders (`backend = "sim:<path>"`; drivers/usb_remote.py is the other end).

Device and handle objects stay in this process; the client sees ids. Every IBackend call is
one JSON line each way, errors travel as errno so the client raises what libusb would.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socketserver
import threading
from pathlib import Path
from typing import Any

import usb.backend

from drivers.usb_remote import (
    CONFIG_FIELDS,
    DEVICE_FIELDS,
    ENDPOINT_FIELDS,
    INTERFACE_FIELDS,
    MAX_LINE,
    descriptor_fields,
    error_reply,
)

logger = logging.getLogger(__name__)


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
