"""The one-recorder-per-five-officers rule (seed 002), per unit.

每五个执法人员至少配备一台执法记录仪: a unit is compliant when the recorders it can actually
use (in service and, optionally, seen recently) number at least ceil(active officers / ratio).
Some units are held to 1:3, so the ratio is per unit. Pure: callers pass `now`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from agent.rules.roster import InventoryItem, Officer

__all__ = ["Recorder", "RecorderLike", "UnitRatio", "recorders_from_inventory", "unit_ratios"]


class RecorderLike(Protocol):
    """What the rule needs to know about a recorder (inventory row + last time seen)."""

    @property
    def vendor(self) -> str: ...
    @property
    def serial(self) -> str: ...
    @property
    def unit_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...  # InventoryStatus is a StrEnum, so it fits
    @property
    def last_seen(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Recorder:
    vendor: str
    serial: str
    unit_id: str | None
    status: str
    last_seen: datetime | None = None


class UnitRatio(BaseModel):
    """Ratio compliance of one unit, as published and reported."""

    model_config = ConfigDict(frozen=True)

    unit_id: str = Field(description="Unit id from the roster/inventory.")
    unit_name: str = Field(default="", description="Unit name from the roster, if known.")
    active_officers: int = Field(description="Active officers of the unit in the roster.")
    recorders_counted: int = Field(description="Recorders that count towards the ratio.")
    ratio: int = Field(description="Officers per recorder required for this unit (5 = 1:5).")
    required: int = Field(description="ceil(active_officers / ratio).")
    compliant: bool = Field(description="recorders_counted >= required.")
    not_counted: list[tuple[str, str]] = Field(
        default_factory=list, description="(serial, reason) of the unit's recorders not counted."
    )


def recorders_from_inventory(
    items: Iterable[InventoryItem], last_seen: Mapping[tuple[str, str], datetime] | None = None
) -> list[Recorder]:
    """Join inventory rows with last-seen times keyed by (vendor, serial)."""
    seen = last_seen or {}
    return [
        Recorder(i.vendor, i.serial, i.unit_id, str(i.status), seen.get((i.vendor, i.serial)))
        for i in items
    ]


def _why_not_counted(
    rec: RecorderLike, not_seen_days: int | None, now: datetime | None
) -> str | None:
    status = str(rec.status)
    if status != "in_service":
        return status
    if not_seen_days is not None and rec.last_seen is not None and now is not None:
        # Unknown last-seen counts: a recorder never docked here may be docked elsewhere.
        away = now - rec.last_seen
        if away > timedelta(days=not_seen_days):
            return f"not seen for {away.days} days"
    return None


def _dedupe(recorders: Iterable[RecorderLike]) -> list[RecorderLike]:
    # A fleet-wide union may list a recorder once per station; count it once, with the
    # most recent sighting.
    best: dict[tuple[str, str], RecorderLike] = {}
    for rec in recorders:
        key = (rec.vendor, rec.serial)
        old = best.get(key)
        if old is None or (
            rec.last_seen is not None and (old.last_seen is None or rec.last_seen > old.last_seen)
        ):
            best[key] = rec
    return list(best.values())


def unit_ratios(
    officers: Iterable[Officer],
    recorders: Iterable[RecorderLike],
    ratio_by_unit: Mapping[str, int] | None = None,
    default_ratio: int = 5,
    not_seen_days: int | None = None,
    now: datetime | None = None,
) -> list[UnitRatio]:
    """Per-unit compliance, sorted by unit id, over every unit in the roster or inventory."""
    ratios = dict(ratio_by_unit or {})
    for unit, r in [("default", default_ratio), *ratios.items()]:
        if r < 1:
            raise ValueError(f"ratio for {unit} must be >= 1, got {r}")
    if not_seen_days is not None and now is None:
        raise ValueError("now is required when not_seen_days is set")

    active: dict[str, int] = {}
    names: dict[str, str] = {}
    for o in officers:
        active.setdefault(o.unit_id, 0)
        active[o.unit_id] += o.active
        names.setdefault(o.unit_id, o.unit_name)

    counted: dict[str, int] = {}
    skipped: dict[str, list[tuple[str, str]]] = {}
    for rec in _dedupe(recorders):
        if not rec.unit_id:
            continue  # belongs to no unit, so it can count for none
        reason = _why_not_counted(rec, not_seen_days, now)
        counted.setdefault(rec.unit_id, 0)
        if reason is None:
            counted[rec.unit_id] += 1
        else:
            skipped.setdefault(rec.unit_id, []).append((rec.serial, reason))

    result = []
    for unit in sorted(active.keys() | counted.keys()):
        ratio = ratios.get(unit, default_ratio)
        required = math.ceil(active.get(unit, 0) / ratio)
        have = counted.get(unit, 0)
        result.append(
            UnitRatio(
                unit_id=unit,
                unit_name=names.get(unit, ""),
                active_officers=active.get(unit, 0),
                recorders_counted=have,
                ratio=ratio,
                required=required,
                compliant=have >= required,
                not_counted=sorted(skipped.get(unit, [])),
            )
        )
    return result
