"""Is next year's make-up-workday schedule (调休) known? A warning from 1 November if not.

The State Council publishes next year's holiday schedule in the autumn. Fixed festivals are
computable for any year, so `holidays.China` always "has" next year's holidays; what it cannot
know before the notice are the weekend make-up workdays. Without them a deadline that spans
such a weekend is computed a working day too late, silently. So from 1 November (station
time) the station warns until the installed `holidays` package, or the local
`compliance.calendar_overrides` file, lists at least one make-up workday of next year.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from holidays.countries import China

from agent.rules.workcal import WorkCalendar

if TYPE_CHECKING:
    from agent.config.loader import AgentConfig
    from agent.station.context import Context

WARN_FROM_MONTH = 11


def library_makeup_workdays(year: int) -> list[date]:
    """Weekend make-up workdays of `year` known to the installed `holidays` package."""
    known: set[date] = getattr(China(years=year), "weekend_workdays", set())
    return sorted(d for d in known if d.year == year)


def override_makeup_workdays(calendar: WorkCalendar, year: int) -> list[date]:
    """Workdays of `year` in the local calendar overrides."""
    days = calendar.overrides.day
    return sorted(d.date for d in days if d.kind == "workday" and d.date.year == year)


def makeup_workdays_warning(today: date, calendar: WorkCalendar) -> str | None:
    """The warning text if, from 1 November, next year's 调休 days are nowhere; else None."""
    if today.month < WARN_FROM_MONTH:
        return None
    year = today.year + 1
    if library_makeup_workdays(year) or override_makeup_workdays(calendar, year):
        return None
    return (
        f"the working-day calendar has no make-up workdays (调休) for {year}: deadlines that "
        f"span them will be a day late. Upgrade the `holidays` package once it has the {year} "
        "schedule, or add the make-up workdays of the State Council notice as kind = workday "
        "entries to the file named by compliance.calendar_overrides"
    )


def station_warning(ctx: Context, now: datetime | None = None) -> str | None:
    """The warning for a station on its local date of `now` (default: the clock); a broken
    overrides file is reported by check-config and the compliance engine, not here."""
    from agent.core import clock
    from agent.core.errors import AgentError

    try:
        cal = ctx.calendar
    except (AgentError, ValueError):
        return None
    return makeup_workdays_warning(cal.local_date(now or clock.now()), cal)


def config_warning(cfg: AgentConfig) -> str | None:
    """The warning for a validated config, without opening the station (for check-config)."""
    from agent.core import clock
    from agent.rules.workcal import load_overrides

    path = cfg.compliance.calendar_overrides
    cal = WorkCalendar(cfg.station.timezone, load_overrides(path) if path else None)
    return makeup_workdays_warning(cal.local_date(clock.now()), cal)
