"""A real pyusb backend (`usb.backend.IBackend`) whose bus holds simulated recorders.

`SimBus` is the hub: recorders are plugged into ports and get a fresh address each time, as
on real USB; a device that is unplugged (or re-enumerates into mass storage) makes every
further call on its handle fail with ENODEV, exactly as libusb does. `SimBackend` is what
`usb.core.find(backend=...)` takes in-process; simulators/usb_server.py exports it on a Unix
socket for an agent in another process.
"""

from __future__ import annotations

import errno
import logging
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

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
