"""Config sections of the compliance clock and of case metadata: `[compliance]`, `[tagging]`.

Kept apart from agent.config.loader so each module stays small; agent.config.loader assembles them.
"""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from agent.config.base import Section
from agent.rules.workcal import DeadlineRule


class ComplianceConfig(Section):
    calendar_overrides: Path | None = Field(
        None, description="TOML of local holidays / workdays the holidays library lacks."
    )
    working_days: int = Field(
        2, ge=1, le=30, description="Default rule: end of the Nth working day after recording."
    )
    default_rule: DeadlineRule | None = Field(
        None,
        description="Replaces the working_days default for every category without a rule, "
        'e.g. { kind = "hours", hours = 24 } where a province requires loading within 24 h.',
    )
    rules: dict[str, DeadlineRule] = Field(
        default_factory=dict,
        description='Deadline rule per category: { kind = "working_days", days = N } or '
        '{ kind = "hours", hours = N }. A retag that changes the category recomputes it.',
    )
    warn_before_hours: float = Field(
        12.0, ge=0, description="A deadline is at risk this long before it passes (warning)."
    )
    not_docked_working_days: int = Field(
        2,
        ge=1,
        le=30,
        description="A recorder in service not docked for this many working days is reported.",
    )
    untagged_after_hours: float = Field(
        48.0, ge=0, description="Recordings without a case number older than this are reported."
    )
    ratio: int = Field(5, ge=1, description="Officers per recorder required (5 = 1:5).")
    ratio_by_unit: dict[str, int] = Field(
        default_factory=dict, description="Per-unit exceptions to `ratio`, e.g. { U2 = 3 }."
    )
    not_seen_days: int | None = Field(
        30,
        ge=1,
        description="An in-service recorder not seen by this station for this many days does "
        "not count towards the ratio (unset: always counts).",
    )
    interval_seconds: float = Field(
        60.0, gt=0, description="How often the compliance thread re-evaluates and alerts."
    )
    case_file_days: int = Field(
        30,
        ge=1,
        le=365,
        description="A concluded case's file is due this many days after its conclusion date "
        "(seed 001: 执行终结之日起30日内归档); `case conclude` sets the date.",
    )

    @field_validator("ratio_by_unit")
    @classmethod
    def _ratios(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [f"{unit} = {r}" for unit, r in v.items() if r < 1]
        if bad:
            raise ValueError(f"ratios must be >= 1: {', '.join(bad)}")
        return v


METADATA_KEYS = (
    "case_number", "capture_time", "capture_place", "collector", "proves",
    "serial", "officer_id", "unit_id", "category", "importance",
    "confidentiality", "party", "stage",
)  # fmt: skip


class AssignmentRule(Section):
    """`[[tagging.assign]]`: tag matching recordings at discovery (e.g. officer X 08-12 → C)."""

    name: str = Field("", description="Shown as the actor (rule:<name>) in the custody log.")
    officer_id: str | None = Field(None, description="Match recordings of this officer.")
    serial: str | None = Field(None, description="Match recordings of this recorder.")
    unit_id: str | None = Field(None, description="Match recordings of this unit.")
    date_from: date | None = Field(None, description="First local date (inclusive).")
    date_to: date | None = Field(None, description="Last local date (inclusive).")
    time_from: time | None = Field(
        None, description="Local time of day the recording starts at or after, e.g. 08:00."
    )
    time_to: time | None = Field(None, description="Local time of day it starts before.")
    fields: dict[str, Any] = Field(description="Metadata to set, e.g. { case_number = 'C' }.")

    @field_validator("fields")
    @classmethod
    def _keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(METADATA_KEYS))
        if unknown:
            raise ValueError(f"unknown metadata keys {unknown}; valid: {', '.join(METADATA_KEYS)}")
        if not v:
            raise ValueError("empty: a rule must set at least one field")
        return v


class TaggingConfig(Section):
    case_number_pattern: str = Field(
        r"^[^\s/\\]{1,64}$",
        description="Python regex a case number (案件编号) must match in full.",
    )
    case_number_example: str | None = Field(
        None, description="An example of a valid case number, quoted in error messages."
    )
    categories: list[str] = Field(
        default_factory=list,
        description="If set, the categories a tag may use (plus those in compliance.rules).",
    )
    sidecars: bool = Field(
        True, description="Read tag sidecar JSON files left on recorder volumes at discovery."
    )
    assign: list[AssignmentRule] = Field(
        default_factory=list,
        description="Assignment rules applied, in order, to each newly discovered recording.",
    )

    @field_validator("case_number_pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from exc
        return v
