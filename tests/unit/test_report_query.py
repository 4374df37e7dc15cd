"""The report's SQL compares instants exactly, whatever offset a time was stored with."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

from agent.compliance.report_query import instant_sql, to_us

ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]


def test_instant_sql_is_exact_to_the_microsecond() -> None:
    conn = sqlite3.connect(":memory:")
    base = datetime(2026, 9, 30, 23, 59, 59, tzinfo=timezone(timedelta(hours=8)))
    texts = []
    for tz in ZONES:
        for us in (0, 1, 499_999, 500_000, 999_999):
            at = (base + timedelta(microseconds=us)).astimezone(tz)
            texts.append(at.isoformat())
    texts += ["2026-10-01T00:00:00Z", "2026-09-30T15:59:59.9995Z", "1969-12-31T23:59:59.5+00:00"]
    for text in texts:
        (got,) = conn.execute(f"SELECT {instant_sql(':t')}", {"t": text}).fetchone()
        want = to_us(datetime.fromisoformat(text))
        assert got == want, text
    # The instant one microsecond before local midnight stays on its day; string order and
    # SQLite's millisecond rounding would both put it on the next.
    last = to_us(datetime(2026, 10, 1, tzinfo=timezone(timedelta(hours=8)))) - 1
    (got,) = conn.execute(
        f"SELECT {instant_sql(':t')}", {"t": "2026-09-30T15:59:59.999999+00:00"}
    ).fetchone()
    assert got == last
