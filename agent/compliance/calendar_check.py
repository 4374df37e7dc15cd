"""Is next year's make-up-workday schedule (调休) known? A warning from 1 November if not.

The State Council publishes next year's holiday schedule in the autumn. Fixed festivals are
computable for any year, so `holidays.China` always "has" next year's holidays; what it cannot
know before the notice are the weekend make-up workdays. Without them a deadline that spans
such a weekend is computed a working day too late, silently. So from 1 November (station
time) the station warns until the installed `holidays` package, or the local
`compliance.calendar_overrides` file, lists at least one make-up workday of next year.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING

from agent.rules.workcal import WorkCalendar

if TYPE_CHECKING:
    from agent.config.loader import AgentConfig
    from agent.station.context import Context

WARN_FROM_MONTH = 11


def library_makeup_workdays(year: int) -> list[date]:
    """Weekend make-up workdays of `year` known to the installed `holidays` package."""
    # Imported here: `holidays.countries` loads every country (~0.35 s), which `status`
    # should not pay when the daemon has already answered for today (see station_warning).
    from holidays.countries import China

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


KV_KEY = "compliance.calendar_warning"  # {"date": local date, "warning": text or null}


def station_warning(ctx: Context, now: datetime | None = None, keep: bool = False) -> str | None:
    """The warning for a station on its local date of `now` (default: the clock); a broken
    overrides file is reported by check-config and the compliance engine, not here.

    The answer only changes with the date, the `holidays` package or the overrides file, so
    the daemon's compliance loop (`keep`) stores today's answer and readers such as `status`
    take it from the ledger instead of loading the holiday tables again."""
    from agent.core import clock
    from agent.core.errors import AgentError

    try:
        cal = ctx.calendar
    except (AgentError, ValueError):
        return None
    today = cal.local_date(now or clock.now()).isoformat()
    cached = _kept(ctx.ledger.get_kv(KV_KEY), today)
    if cached is not None and not keep:
        return cached[0]
    warning = makeup_workdays_warning(date.fromisoformat(today), cal)
    if keep and cached != (warning,):
        with ctx.ledger.tx() as conn:
            ctx.ledger.set_kv(conn, KV_KEY, json.dumps({"date": today, "warning": warning}))
    return warning


def _kept(raw: str | None, today: str) -> tuple[str | None] | None:
    """(warning,) stored for `today`, or None when nothing (valid) is stored for it."""
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("date") != today:
        return None
    warning = doc.get("warning")
    return (warning if isinstance(warning, str) else None,)


def config_warning(cfg: AgentConfig) -> str | None:
    """The warning for a validated config, without opening the station (for check-config)."""
    from agent.core import clock
    from agent.rules.workcal import load_overrides

    path = cfg.compliance.calendar_overrides
    cal = WorkCalendar(cfg.station.timezone, load_overrides(path) if path else None)
    return makeup_workdays_warning(cal.local_date(clock.now()), cal)
