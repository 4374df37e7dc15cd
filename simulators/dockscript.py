"""Dock scripts: which simulated recorder is plugged into which bay, and when.

A script is a list of events `(at seconds, plug|unplug, serial, bay)` plus, optionally, the
recorders it uses. Built-in scripts: `shift-change` (recorders arrive spread over a window,
e.g. 12 within 2 minutes at the end of a shift, each takes the first free bay and stays
`dwell_s`), `all-at-once`. A TOML file gives a script by hand (docs/drivers.md, "Dock script").
Times are script seconds; the dock multiplies them by its `time_scale` (tests compress).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from simulators.bodycam import BodycamSpec

TRANSPORTS = ("usb", "ambarella", "serial", "mass_storage")
Action = Literal["plug", "unplug"]


@dataclass
class DockRecorder:
    """A simulated recorder as the dock presents it: footage plus its control interface."""

    spec: BodycamSpec
    transport: str = "usb"  # usb (ZFY protocol), ambarella, serial, mass_storage
    password: str = "123456"
    battery_pct: int = 80
    charging: bool = True
    # Device faults: usb: unresponsive, garbage_info, vanish:<command>; serial: silent,
    # garbage, truncated, vanish:<COMMAND>.
    faults: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport: {self.transport!r}, choose from {list(TRANSPORTS)}")

    @property
    def serial(self) -> str:
        return self.spec.serial

    @property
    def clock_offset_s(self) -> float:
        return self.spec.effective_offset().total_seconds()


@dataclass(frozen=True)
class DockEvent:
    at: float
    action: Action
    serial: str
    bay: int | None = None


@dataclass
class DockScript:
    events: list[DockEvent]
    recorders: list[DockRecorder] = field(default_factory=list)
    name: str = "custom"

    @property
    def duration(self) -> float:
        return max((e.at for e in self.events), default=0.0)


def shift_change(
    serials: list[str], bays: int, window_s: float = 120.0, dwell_s: float | None = None
) -> DockScript:
    """Arrivals spread evenly over `window_s`; each takes the first free bay for `dwell_s`
    (None: until the dock stops). A recorder that finds every bay taken waits for one."""
    if bays < 1:
        raise ValueError("bays: must be >= 1")
    if dwell_s is None and len(serials) > bays:
        raise ValueError(
            f"{len(serials)} recorders for {bays} bays: give a dwell time so bays free up"
        )
    free_at = [0.0] * bays
    events: list[DockEvent] = []
    step = window_s / max(1, len(serials) - 1) if len(serials) > 1 else 0.0
    for i, serial in enumerate(serials):
        arrive = i * step
        bay = min(range(bays), key=lambda b: (max(free_at[b], arrive), b))
        at = max(free_at[bay], arrive)
        events.append(DockEvent(round(at, 3), "plug", serial, bay + 1))
        if dwell_s is None:
            free_at[bay] = float("inf")
        else:
            free_at[bay] = at + dwell_s
            events.append(DockEvent(round(at + dwell_s, 3), "unplug", serial, bay + 1))
    events.sort(key=lambda e: (e.at, e.action != "unplug"))
    return DockScript(events, name="shift-change")


def all_at_once(serials: list[str], bays: int) -> DockScript:
    if len(serials) > bays:
        raise ValueError(f"{len(serials)} recorders do not fit {bays} bays at once")
    return DockScript(
        [DockEvent(0.0, "plug", s, i + 1) for i, s in enumerate(serials)], name="all-at-once"
    )


def builtin(
    name: str, serials: list[str], bays: int, window_s: float = 120.0, dwell_s: float | None = None
) -> DockScript:
    if name == "shift-change":
        return shift_change(serials, bays, window_s, dwell_s)
    if name == "all-at-once":
        return all_at_once(serials, bays)
    raise ValueError(f"unknown dock script {name!r}: shift-change, all-at-once or a TOML file")


def load(path: Path) -> DockScript:
    """A hand-written script (TOML): [[recorder]] tables (optional) and [[event]] tables."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"dock script {path}: {exc}") from None
    recorders = [_recorder(path, i, r) for i, r in enumerate(data.get("recorder", []))]
    events = []
    for i, e in enumerate(data.get("event", [])):
        try:
            action = e["action"]
            if action not in ("plug", "unplug"):
                raise ValueError(f"action {action!r} is not plug or unplug")
            bay = e.get("bay")
            events.append(DockEvent(float(e["at"]), action, str(e["serial"]), bay))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"dock script {path}: event[{i}]: {exc}") from None
    if not events:
        raise ValueError(f"dock script {path}: no [[event]] tables")
    events.sort(key=lambda ev: (ev.at, ev.action != "unplug"))
    return DockScript(events, recorders, name=Path(path).stem)


def _recorder(path: Path, i: int, r: dict[str, object]) -> DockRecorder:
    spec_keys = {"serial", "officer", "unit", "officer_name", "unit_name", "vendor", "clips",
                 "seconds", "clock_offset_s", "width", "height", "fps"}  # fmt: skip
    own_keys = {"transport", "password", "battery_pct", "charging", "faults", "bodycam_faults"}
    unknown = set(r) - spec_keys - own_keys
    try:
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        spec = BodycamSpec(
            **{k: v for k, v in r.items() if k in spec_keys},  # type: ignore[arg-type]
            faults=tuple(r.get("bodycam_faults", ())),  # type: ignore[arg-type]
        )
        spec.validate()
        return DockRecorder(
            spec,
            transport=str(r.get("transport", "usb")),
            password=str(r.get("password", "123456")),
            battery_pct=int(r.get("battery_pct", 80)),  # type: ignore[call-overload]
            charging=bool(r.get("charging", True)),
            faults=tuple(r.get("faults", ())),  # type: ignore[arg-type]
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dock script {path}: recorder[{i}]: {exc}") from None
