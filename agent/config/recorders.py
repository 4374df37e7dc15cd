"""The `[inventory]`, `[roster]` and `[recorders]` config sections."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from agent.config.base import Section


class InventoryConfig(Section):
    file: Path | None = Field(
        None, description="Device inventory CSV; when set, unlisted recorders are quarantined."
    )


class RosterConfig(Section):
    file: Path | None = Field(None, description="Officer roster CSV (for the 1:5 ratio).")


class RecordersConfig(Section):
    clock_threshold_seconds: float = Field(
        60.0,
        ge=0,
        description="A recorder clock off by more than this (at dock) is recorded in the custody "
        "log, its recording times are corrected (originals kept), and it is set or reported.",
    )
    set_clock: bool = Field(
        True,
        description="Set a drifted recorder's clock at dock (only while the station clock is "
        "trusted, see station_clock); off: report clock.drift and leave the recorder alone.",
    )
    station_clock: Literal["auto", "trusted", "untrusted"] = Field(
        "auto",
        description="Whether the station's own clock may be used to set recorders: auto = only "
        "while the kernel reports NTP sync (adjtimex); trusted = always (e.g. a GPS clock the "
        "kernel does not flag); untrusted = never.",
    )
    status_refresh_seconds: float = Field(
        60.0,
        gt=0,
        description="How often battery and charging are re-read from a recorder that stays "
        "attached on its control port.",
    )
