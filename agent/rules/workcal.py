"""Chinese working-day calendar and the deadline rules of the compliance clock.

Seed 001 says footage must be stored within 2 *working* days after it was made. Working days
come from `holidays.China` (statutory holidays and the weekend make-up workdays, 调休) plus a
local overrides file for what the library lacks: local holidays, or next year's schedule when
the State Council has published it but the installed library predates it.

Everything here is pure: no database, no clock; callers pass `now`.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from agent.core.errors import AgentError

__all__ = [
    "CalendarError",
    "CalendarOverrides",
    "DayOverride",
    "DeadlineRule",
    "DeadlineStatus",
    "HoursRule",
    "WorkCalendar",
    "WorkingDaysRule",
    "deadline",
    "deadline_status",
    "load_overrides",
]

DeadlineStatus = Literal["met", "met_late", "open", "at_risk", "missed"]


class CalendarError(AgentError, ValueError):
    """The calendar overrides file (or a time zone) is invalid; the message names the entry."""


# --- overrides --------------------------------------------------------------------------------


class DayOverride(BaseModel):
    """One `[[day]]` table of the overrides file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # `dt.date`, because a field named `date` would shadow the type in its own annotation.
    date: dt.date = Field(description="The day, e.g. 2026-11-02 (TOML date or string).")
    kind: Literal["holiday", "workday"] = Field(
        description="holiday: no work on that day; workday: a working day even on a weekend."
    )
    note: str = Field(default="", description="Why (shown to operators), e.g. the local notice.")


class CalendarOverrides(BaseModel):
    """Local corrections to `holidays.China`; they take precedence over the library."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: list[DayOverride] = Field(default_factory=list, description="The overridden days.")

    @model_validator(mode="after")
    def _no_contradictions(self) -> CalendarOverrides:
        first: dict[date, tuple[int, str]] = {}
        for i, d in enumerate(self.day, start=1):
            seen = first.setdefault(d.date, (i, d.kind))
            if seen[1] != d.kind:
                raise ValueError(
                    f"[[day]] entry {i} (date {d.date}): kind {d.kind!r} contradicts "
                    f"entry {seen[0]} which makes the same date a {seen[1]!r}"
                )
        return self

    def as_dict(self) -> dict[date, bool]:
        """Map date -> is working day."""
        return {d.date: d.kind == "workday" for d in self.day}


def _describe(err: dict[str, Any], raw: dict[str, Any]) -> str:
    """One pydantic error as '[[day]] entry N (date X): key: message'."""
    loc = err["loc"]
    msg = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
    if len(loc) >= 2 and loc[0] == "day" and isinstance(loc[1], int):
        days = raw.get("day")
        entry = days[loc[1]] if isinstance(days, list) and loc[1] < len(days) else {}
        when = entry.get("date", "?") if isinstance(entry, dict) else "?"
        key = ".".join(str(p) for p in loc[2:]) or "entry"
        return f"[[day]] entry {loc[1] + 1} (date {when}): {key}: {msg}"
    return ".".join(str(p) for p in loc) + f": {msg}" if loc else msg


def load_overrides(path: str | Path) -> CalendarOverrides:
    """Read `calendar-overrides.toml`; raises CalendarError naming the file and entry."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read calendar overrides: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalendarError(f"{path}: not valid UTF-8 TOML: {exc}") from exc
    try:
        return CalendarOverrides.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(dict(e), raw) for e in exc.errors())
        raise CalendarError(f"{path}: {problems}") from exc


# --- calendar ---------------------------------------------------------------------------------


@functools.cache
def _china_with_overrides() -> type[Any]:
    # holidays is imported on first use (~0.2 s): `status` and other commands that never
    # count working days start faster.
    from holidays.countries import China

    class _ChinaWithOverrides(China):
        """`holidays.China` whose `is_working_day` consults the local overrides first.

        Subclassing (rather than wrapping) lets the library's own `get_nth_working_day` loop see
        the overrides, so there is one working-day walk, not two that could disagree.
        """

        def __init__(self, overrides: dict[date, bool]) -> None:
            self._overrides = overrides
            super().__init__()

        def is_working_day(self, key: Any) -> bool:
            day = self.__keytransform__(key)
            if day in self._overrides:
                return self._overrides[day]
            return bool(super().is_working_day(day))

    return _ChinaWithOverrides


class WorkCalendar:
    """Working days in one time zone: `holidays.China` plus local overrides."""

    def __init__(self, tz: str = "Asia/Shanghai", overrides: CalendarOverrides | None = None):
        try:
            self.tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(f"unknown time zone {tz!r} (use an IANA name)") from exc
        self.overrides = overrides or CalendarOverrides()
        self._china: Any = None  # built on first use: reading the date needs no holiday table
        # holidays populates a year lazily on first lookup by mutating itself; ingest workers
        # share one calendar, and a half-populated year would yield a wrong deadline.
        self._lock = threading.Lock()

    @property
    def _cn(self) -> Any:
        """The holiday calendar with the overrides (callers hold `_lock`)."""
        if self._china is None:
            self._china = _china_with_overrides()(self.overrides.as_dict())
        return self._china

    def is_working_day(self, day: date) -> bool:
        """True on a working day (make-up weekend workdays included)."""
        with self._lock:
            return bool(self._cn.is_working_day(_as_date(day)))

    def nth_working_day_after(self, day: date, n: int) -> date:
        """The n-th working day strictly after `day` (n >= 1)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        with self._lock:
            result: date = self._cn.get_nth_working_day(_as_date(day), n)
        return result

    def local_date(self, moment: datetime) -> date:
        """The calendar date of an aware datetime in this calendar's zone."""
        return _require_aware(moment, "moment").astimezone(self.tz).date()


def _as_date(day: date) -> date:
    # A datetime is a date subclass; its local date must come from local_date(), not here.
    if isinstance(day, datetime):
        raise TypeError("pass a date; use WorkCalendar.local_date() for a datetime")
    return day


def _require_aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment


# --- deadline rules ---------------------------------------------------------------------------


class WorkingDaysRule(BaseModel):
    """End of the N-th working day after the day the recording ended (seed 001: N = 2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["working_days"] = "working_days"
    days: int = Field(default=2, ge=1, le=30, description="Working days after the recording's day.")


class HoursRule(BaseModel):
    """The recording's end plus N hours (some provinces require loading within 24 hours)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["hours"] = "hours"
    hours: int = Field(ge=1, le=24 * 30, description="Hours after the recording ended.")


RuleVariant = Annotated[WorkingDaysRule | HoursRule, Field(discriminator="kind")]


class DeadlineRule(RootModel[RuleVariant]):
    """A deadline rule, chosen by `kind`; `DeadlineRule()` is the default (2 working days)."""

    model_config = ConfigDict(frozen=True)

    root: RuleVariant = WorkingDaysRule()  # frozen, so one shared default is safe


def deadline(
    end: datetime, rule: DeadlineRule | WorkingDaysRule | HoursRule, cal: WorkCalendar
) -> datetime:
    """When a recording that ended at `end` must be stored; aware, in the calendar's zone."""
    _require_aware(end, "end")
    r = rule.root if isinstance(rule, DeadlineRule) else rule
    if isinstance(r, HoursRule):
        # Add in UTC: elapsed hours, not wall-clock hours, if the zone ever has DST.
        due = end.astimezone(dt.UTC) + timedelta(hours=r.hours)
        return due.astimezone(cal.tz)
    last_day = cal.nth_working_day_after(cal.local_date(end), r.days)
    return datetime.combine(last_day, time.max, tzinfo=cal.tz)


def deadline_status(
    deadline: datetime, met_at: datetime | None, now: datetime, warn_before: timedelta
) -> DeadlineStatus:
    """Classify a deadline: met / met_late once met, else open / at_risk / missed at `now`.

    The deadline instant itself still counts as in time.
    """
    if warn_before < timedelta(0):
        raise ValueError("warn_before must not be negative")
    _require_aware(deadline, "deadline")
    if met_at is not None:
        return "met" if _require_aware(met_at, "met_at") <= deadline else "met_late"
    _require_aware(now, "now")
    if now > deadline:
        return "missed"
    if now >= deadline - warn_before:
        return "at_risk"
    return "open"
