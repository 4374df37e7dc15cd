"""`report` over a period: SQL aggregates equal the rules applied row by row (issue 13).

The counts come from one GROUP BY (agent/compliance/report_query.py); this checks them
against the report's rules evaluated in Python on every row, on a ledger whose times are
stored with mixed UTC offsets and with deadlines met one microsecond either side.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from agent.compliance import report
from agent.compliance.engine import RECORDING_SQL
from agent.station.context import Context
from bench.scale_ledger import build as build_ledger
from tests.fixtures.station import Station

N = 3000
OFFSETS = [timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)), UTC]


def _shift_offsets(ctx: Context) -> None:
    """Same instants, other offsets; some deadlines met exactly at, or 1 µs after, the due."""
    conn = ctx.ledger.connect()
    rows = conn.execute("SELECT id, end, deadline, deadline_met_at FROM recordings").fetchall()
    conn.execute("BEGIN IMMEDIATE")
    for i, (rid, end, due, met) in enumerate(rows):
        tz = OFFSETS[i % 3]
        end = datetime.fromisoformat(end).astimezone(tz).isoformat()
        due_at = datetime.fromisoformat(due)
        if met is not None and i % 5 == 0:
            met = (due_at + timedelta(microseconds=i % 2)).astimezone(OFFSETS[i % 2]).isoformat()
        due = due_at.astimezone(OFFSETS[(i + 1) % 3]).isoformat()
        conn.execute(
            "UPDATE recordings SET end = ?, deadline = ?, deadline_met_at = ? WHERE id = ?",
            (end, due, met, rid),
        )
    conn.execute("COMMIT")


def _reference(ctx: Context, doc: dict, start: date | None, end: date | None, unit: str | None):
    """The report's rules on every row, in Python (the pre-aggregate implementation)."""
    now = datetime.fromisoformat(doc["generated_at"])
    warn = timedelta(hours=ctx.cfg.compliance.warn_before_hours)
    age = timedelta(hours=ctx.cfg.compliance.untagged_after_hours)
    statuses: Counter[str] = Counter()
    untagged = overdue = attention = 0
    for row in ctx.ledger.connect().execute(RECORDING_SQL):
        made = row["end"] or row["start"]
        if unit is not None and row["unit_id"] != unit:
            continue
        if start or end:
            day = datetime.fromisoformat(made).astimezone(ctx.calendar.tz).date()
            if (start and day < start) or (end and day > end):
                continue
        status = report._status(row, now, warn) or "no_deadline"
        statuses[status] += 1
        tagged = row["case_number"] is not None
        if not tagged:
            untagged += 1
            overdue += now - datetime.fromisoformat(row["end"]) > age
        attention += status in ("at_risk", "missed", "met_late") or not tagged
    return statuses, untagged, overdue, attention


@pytest.fixture
def shifted(make_station: Callable[..., Station]) -> Station:
    st = make_station()
    st.data_dir.mkdir(parents=True, exist_ok=True)
    build_ledger(st.data_dir / "ledger.sqlite3", N, recorders=20)
    ctx = st.context()
    _shift_offsets(ctx)
    ctx.close()
    return st


def test_period_counts_equal_the_rules_row_by_row(shifted: Station) -> None:
    ctx = shifted.context()
    try:
        ends = sorted(
            datetime.fromisoformat(e).astimezone(ctx.calendar.tz).date()
            for (e,) in ctx.ledger.connect().execute("SELECT end FROM recordings")
        )
        mid = ends[len(ends) // 2]
        cases = [
            (None, None, None),
            (mid.replace(day=1), mid, None),
            (mid, mid, None),
            (ends[0], ends[-1], "unit-03"),
            (ends[-1] - timedelta(days=2), None, None),
        ]
        for start, end, unit in cases:
            doc = report.build(ctx, start=start, end=end, unit=unit, limit=50)
            statuses, untagged, overdue, attention = _reference(ctx, doc, start, end, unit)
            got = {s: doc["deadlines"][s] for s in report.STATUSES if doc["deadlines"][s]}
            assert got == dict(statuses), (start, end, unit)
            assert doc["deadlines"]["total"] == sum(statuses.values())
            assert (doc["untagged"]["count"], doc["untagged"]["overdue"]) == (untagged, overdue)
            assert doc["recordings_matching"] == attention
            assert len(doc["recordings"]) == min(attention, 50)
            assert doc["truncated"] is (attention > 50)
            assert sum(u["total"] for u in doc["by_unit"]) == doc["deadlines"]["total"]
            assert all(
                r["deadline_status"] in ("at_risk", "missed", "met_late") or not r["tagged"]
                for r in doc["recordings"]
            )
            if start is None and end is None:
                # The deadlines met 1 µs late are late, those met at the instant are in time.
                assert doc["deadlines"]["met_late"] > 0 and doc["deadlines"]["met"] > 0
    finally:
        ctx.close()


def test_cli_limit_and_all_recordings(shifted: Station) -> None:
    doc = json.loads(shifted.cli("report", "--json", "--limit", "7", check=True).stdout)
    assert len(doc["recordings"]) == 7 and doc["truncated"] is True
    assert doc["recordings_listed"] == "attention"
    every = shifted.cli("report", "--json", "--all-recordings", "--limit", "0", check=True)
    doc = json.loads(every.stdout)
    assert len(doc["recordings"]) == N == doc["recordings_matching"]
    assert doc["truncated"] is False and doc["recordings_listed"] == "all"
    bad = shifted.cli("report", "--limit", "-1")
    assert bad.returncode == 2 and "is not a count" in bad.stderr
