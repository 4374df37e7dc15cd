"""The SQL behind `report` over a period: counts aggregated by SQLite, rows only where needed.

A year of a busy station is about half a million recordings, so the report never builds them
one by one in Python. Every count of the report (deadline status, tagged, untagged too long,
per unit) is one `GROUP BY` over a range of the covering index `recordings_report`
(migration 0017) on when each recording was made; only the recordings needing attention (at
risk, missed, met late, untagged) are read as rows, chosen, sorted and bounded by SQLite.

The rules are those of `agent.rules.workcal.deadline_status` and the report's own, on the
row's instants (integer microseconds kept by migration 0017's triggers, whatever UTC offset
a time was stored with), so the period's edges and "met by the deadline" are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from sqlite3 import Connection, Row
from typing import Any

from agent.compliance.engine import RECORDING_SQL

STATUSES = ("met", "met_late", "open", "at_risk", "missed", "no_deadline")
ATTENTION = ("at_risk", "missed", "met_late")  # listed, with every untagged recording
ATTENTION_SQL = "('at_risk', 'missed', 'met_late')"  # the same constants as SQL text

STATUS_SQL = (
    "CASE WHEN r.due_us IS NULL THEN 'no_deadline'"
    " WHEN r.met_us IS NOT NULL THEN"
    " CASE WHEN r.met_us <= r.due_us THEN 'met' ELSE 'met_late' END"
    " WHEN :now_us > r.due_us THEN 'missed'"
    " WHEN :now_us >= r.due_us - :warn_us THEN 'at_risk'"
    " ELSE 'open' END"
)
UNTAGGED_SQL = "r.untagged = 1"  # no case number in the current metadata (migration 0017)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(at: datetime) -> int:
    """`at` (aware) in microseconds since the epoch, as migration 0017 stores instants."""
    return (at - EPOCH) // timedelta(microseconds=1)


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
        """The WHERE clause and its parameters: a range of `recordings_report` on the
        instant each recording was made, from the first local day's start to the day after
        the last one."""
        clauses: list[str] = []
        params: dict[str, Any] = {
            "now_us": to_us(self.now),
            "warn_us": self.warn // timedelta(microseconds=1),
            "age_us": to_us(self.now - self.untagged_age),
        }
        if self.start is not None:
            clauses.append("r.made_us >= :lo_us")
            params["lo_us"] = to_us(datetime.combine(self.start, time.min, tz))
        if self.end is not None:
            clauses.append("r.made_us < :hi_us")
            params["hi_us"] = to_us(datetime.combine(self.end + timedelta(days=1), time.min, tz))
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

    def add(self, unit: str | None, status: str, untagged: bool, overdue: bool, n: int) -> None:
        self.statuses[status] += n
        per = self.units.setdefault(
            unit, {"total": 0, **dict.fromkeys(STATUSES, 0), "untagged": 0, "untagged_overdue": 0}
        )
        per["total"] += n
        per[status] += n
        if untagged:
            self.untagged += n
            per["untagged"] += n
            if overdue:
                self.untagged_overdue += n
                per["untagged_overdue"] += n
        if status in ATTENTION or untagged:
            self.attention += n


def counts(conn: Connection, period: Period, tz: Any) -> Counts:
    """Every count of the report, aggregated by SQLite in one pass over the period."""
    where, params = period.where(tz)
    sql = (
        "SELECT unit, status, untagged, overdue, COUNT(*) FROM ("
        f"SELECT r.unit_id AS unit, {STATUS_SQL} AS status, {UNTAGGED_SQL} AS untagged,"
        f" r.age_us < :age_us AS overdue FROM recordings r{where})"
        " GROUP BY unit, status, untagged, overdue"
    )
    out = Counts()
    for unit, status, untagged, overdue, n in conn.execute(sql, params):
        out.add(unit, status, bool(untagged), bool(overdue), n)
    return out


def attention_rows(
    conn: Connection, period: Period, tz: Any, limit: int | None, everything: bool = False
) -> Iterator[Row]:
    """The period's recordings needing attention (or all of them with `everything`), in
    deadline order, at most `limit` (None: no bound).

    Which, in what order and how many come from the index alone; only the rows listed are
    read whole (RECORDING_SQL)."""
    where, params = period.where(tz)
    if not everything:
        pick = f"{UNTAGGED_SQL} OR ({STATUS_SQL}) IN {ATTENTION_SQL}"
        where += f" AND ({pick})" if where else f" WHERE ({pick})"
    sub = f"SELECT r.id AS pick, r.due_us AS k1, r.made_us AS k2 FROM recordings r{where}"
    sub += " ORDER BY r.due_us, r.made_us, r.id"
    if limit is not None:
        sub += " LIMIT :limit"
        params["limit"] = limit
    sql = RECORDING_SQL + f" JOIN ({sub}) p ON p.pick = r.id ORDER BY p.k1, p.k2, r.id"
    yield from conn.execute(sql, params)
