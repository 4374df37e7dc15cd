"""The SQL behind `report` over a period: counts aggregated by SQLite, rows only where needed.

A year of a busy station is about half a million recordings, so the report never builds them
one by one in Python. Every count of the report (deadline status, tagged, untagged too long,
per unit) is one `GROUP BY` over an index range of when each recording was made
(`recordings_made`, migration 0009); only the recordings needing attention (at risk, missed,
met late, untagged) are read as rows, sorted and bounded by SQLite.

The rules are the same as `agent.rules.workcal.deadline_status` and the report's own: times
are compared as instants to the microsecond (`instant_sql`), whatever UTC offset each was
stored with, so the period's edges and "met by the deadline" are exact, not string order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from sqlite3 import Connection, Row
from typing import Any

from agent.compliance.engine import MADE_SQL, RECORDING_SQL, made_range_start

STATUSES = ("met", "met_late", "open", "at_risk", "missed", "no_deadline")
ATTENTION = ("at_risk", "missed", "met_late")  # listed, with every untagged recording
US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant_sql(x: str) -> str:
    """SQL for the instant of the ISO-8601 text `x` (`YYYY-MM-DDTHH:MM:SS[.f]` and `+HH:MM`
    or `Z`, as `datetime.isoformat` writes it) in integer microseconds since the epoch.

    `unixepoch` takes the offset but rounds fractional seconds to milliseconds, so the
    seconds go in without their fraction and the fraction is added exactly.
    """
    tail = f"CASE WHEN substr({x}, -1) = 'Z' THEN 'Z' ELSE substr({x}, -6) END"
    frac = (
        f"CASE WHEN substr({x}, 20, 1) = '.' THEN CAST(substr(substr({x}, 21,"
        f" length({x}) - 20 - length({tail})) || '000000', 1, 6) AS INTEGER) ELSE 0 END"
    )
    return f"(unixepoch(substr({x}, 1, 19) || {tail}) * {US} + {frac})"


def to_us(at: datetime) -> int:
    """`at` (aware) in microseconds since the epoch, as `instant_sql` computes it."""
    return (at - EPOCH) // timedelta(microseconds=1)


# The recording's columns as the report reads them (RECORDING_SQL's `end` and `start`).
_END = "NULLIF(COALESCE(r.end_corrected, r.end), '')"
_START = "NULLIF(COALESCE(r.start_corrected, r.start), '')"
_DUE = "NULLIF(r.deadline, '')"
_MET = "NULLIF(r.deadline_met_at, '')"
MADE_US = instant_sql(f"COALESCE({_END}, {_START})")  # the day it was made (period)
AGE_US = instant_sql(f"COALESCE({_END}, r.discovered_at)")  # untagged for how long
STATUS_SQL = (
    f"CASE WHEN {_DUE} IS NULL THEN 'no_deadline'"
    f" WHEN {_MET} IS NOT NULL THEN"
    f" CASE WHEN {instant_sql(_MET)} <= {instant_sql(_DUE)} THEN 'met' ELSE 'met_late' END"
    f" WHEN :now_us > {instant_sql(_DUE)} THEN 'missed'"
    f" WHEN :now_us >= {instant_sql(_DUE)} - :warn_us THEN 'at_risk'"
    " ELSE 'open' END"
)
# The current metadata's case number, looked up only for recordings ever tagged.
CASE_SQL = (
    "CASE WHEN r.metadata_version = 0 THEN NULL ELSE (SELECT json_extract(v.fields,"
    " '$.case_number') FROM metadata_versions v WHERE v.recording_id = r.id"
    " AND v.version = r.metadata_version) END"
)


@dataclass
class Period:
    """What a report covers: local days [start, end] (None: open), one unit or all."""

    start: date | None
    end: date | None
    unit: str | None
    now: datetime
    warn: timedelta
    untagged_age: timedelta

    def where(self, tz: Any) -> tuple[str, dict[str, Any]]:
        """The WHERE clause and its parameters: an index range on `recordings_made`
        (widened by a day for mixed UTC offsets), then the exact test on the instant."""
        clauses: list[str] = []
        params: dict[str, Any] = {
            "now_us": to_us(self.now),
            "warn_us": self.warn // timedelta(microseconds=1),
            "age_us": to_us(self.now - self.untagged_age),
        }
        if self.start is not None:
            lo = datetime.combine(self.start, time.min, tz)
            clauses += [f"{MADE_SQL} >= :lo", f"{MADE_US} >= :lo_us"]
            params.update(lo=made_range_start(lo), lo_us=to_us(lo))
        if self.end is not None:
            hi = datetime.combine(self.end + timedelta(days=1), time.min, tz)
            clauses += [f"{MADE_SQL} <= :hi", f"{MADE_US} < :hi_us"]
            params.update(hi=(hi + timedelta(days=1)).isoformat(), hi_us=to_us(hi))
        if self.start is not None or self.end is not None:
            clauses.append(f"COALESCE({_END}, {_START}) IS NOT NULL")
        if self.unit is not None:
            clauses.append("r.unit_id = :unit")
            params["unit"] = self.unit
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


@dataclass
class Counts:
    """The period's counts, overall and per unit."""

    statuses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    untagged: int = 0
    untagged_overdue: int = 0
    attention: int = 0  # recordings `attention_rows` would list without a bound
    units: dict[str | None, dict[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def add(self, unit: str | None, status: str, tagged: int, overdue: int, n: int) -> None:
        self.statuses[status] += n
        per = self.units.setdefault(
            unit, {"total": 0, **dict.fromkeys(STATUSES, 0), "untagged": 0, "untagged_overdue": 0}
        )
        per["total"] += n
        per[status] += n
        if not tagged:
            self.untagged += n
            per["untagged"] += n
            self.untagged_overdue += n * overdue
            per["untagged_overdue"] += n * overdue
        if status in ATTENTION or not tagged:
            self.attention += n


def counts(conn: Connection, period: Period, tz: Any) -> Counts:
    """Every count of the report, aggregated by SQLite in one pass over the period."""
    where, params = period.where(tz)
    sql = (
        "SELECT unit, status, tagged, overdue, COUNT(*) FROM ("
        f"SELECT r.unit_id AS unit, {STATUS_SQL} AS status,"
        f" ({CASE_SQL}) IS NOT NULL AS tagged, {AGE_US} < :age_us AS overdue"
        f" FROM recordings r{where}) GROUP BY unit, status, tagged, overdue"
    )
    out = Counts()
    for unit, status, tagged, overdue, n in conn.execute(sql, params):
        out.add(unit, status, tagged, overdue, n)
    return out


def attention_rows(
    conn: Connection, period: Period, tz: Any, limit: int | None, everything: bool = False
) -> Iterator[Row]:
    """The period's recordings needing attention (or all of them with `everything`), in
    deadline order, at most `limit` (None: no bound)."""
    where, params = period.where(tz)
    sql = RECORDING_SQL + where
    if not everything:
        sql += (" AND " if where else " WHERE ") + (
            f"(m.fields IS NULL OR json_extract(m.fields, '$.case_number') IS NULL"
            f" OR ({STATUS_SQL}) IN {ATTENTION!r})"
        )
    sql += " ORDER BY r.deadline, r.start"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    yield from conn.execute(sql, params)
