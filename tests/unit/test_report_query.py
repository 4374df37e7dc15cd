"""Migration 0017 keeps each recording's times as exact instants, whatever offset they carry."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from agent.compliance.report_query import to_us
from agent.ledger.db import Ledger

ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]


def _ledger(tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    conn = ledger.connect()
    conn.execute(
        "INSERT INTO devices(id, vendor, serial, serial_source, first_seen)"
        " VALUES(1, 'v', 'S', 'devinfo', '2026-01-01T00:00:00+00:00')"
    )
    return ledger, conn


def _insert(conn, rid: str, end: str | None, deadline: str | None, met: str | None) -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        "INSERT INTO recordings(id, device_id, source_path, source_path_raw, size, mtime_ns,"
        " start, end, state, deadline, deadline_met_at, stable_since, discovered_at, updated_at)"
        " VALUES(?, 1, ?, ?, 1, 1, ?, ?, 'discovered', ?, ?, ?, ?, ?)",
        (rid, rid, rid.encode(), "2026-09-30T01:00:00+00:00", end, deadline, met)
        + ("2026-09-30T02:00:00.5+00:00",) * 3,
    )


def test_instants_are_exact_to_the_microsecond(tmp_path: Path) -> None:
    ledger, conn = _ledger(tmp_path)
    base = datetime(2026, 9, 30, 23, 59, 59, tzinfo=timezone(timedelta(hours=8)))
    texts = [
        (base + timedelta(microseconds=us)).astimezone(tz).isoformat()
        for tz in ZONES
        for us in (0, 1, 499_999, 500_000, 999_999)
    ]
    for i, text in enumerate(texts):
        _insert(conn, f"r{i}", text, text, texts[-1 - i])
    for i, text in enumerate(texts):
        made, due, met = conn.execute(
            "SELECT made_us, due_us, met_us FROM recordings WHERE id = ?", (f"r{i}",)
        ).fetchone()
        want = to_us(datetime.fromisoformat(text))
        assert (made, due) == (want, want), text
        assert met == to_us(datetime.fromisoformat(texts[-1 - i]))
    # One microsecond before local midnight stays on its day (SQLite's own millisecond
    # rounding would move it to the next).
    last = to_us(datetime(2026, 10, 1, tzinfo=timezone(timedelta(hours=8)))) - 1
    _insert(conn, "edge", "2026-09-30T15:59:59.999999+00:00", None, None)
    row = conn.execute(
        "SELECT made_us, age_us, due_us FROM recordings WHERE id = 'edge'"
    ).fetchone()
    assert tuple(row) == (last, last, None)
    ledger.close()


def test_instants_follow_every_change_of_their_sources(tmp_path: Path) -> None:
    ledger, conn = _ledger(tmp_path)
    _insert(conn, "r", None, None, None)
    start = to_us(datetime.fromisoformat("2026-09-30T01:00:00+00:00"))
    discovered = to_us(datetime.fromisoformat("2026-09-30T02:00:00.5+00:00"))
    row = conn.execute("SELECT made_us, age_us, due_us, untagged FROM recordings").fetchone()
    assert tuple(row) == (start, discovered, None, 1)  # no end: made = start, age = discovered
    conn.execute(
        "UPDATE recordings SET end_corrected = '2026-09-30T09:30:00+08:00',"
        " deadline = '2026-10-09T23:59:59.999999+08:00'"
    )
    row = conn.execute("SELECT made_us, age_us, due_us FROM recordings").fetchone()
    corrected = to_us(datetime.fromisoformat("2026-09-30T09:30:00+08:00"))
    due = to_us(datetime.fromisoformat("2026-10-09T23:59:59.999999+08:00"))
    assert tuple(row) == (corrected, corrected, due)
    # Tagged, then the case number cleared by a later version: untagged again.
    for version, fields in ((1, '{"case_number": "C-1"}'), (2, '{"case_number": null}')):
        conn.execute(
            "INSERT INTO metadata_versions(recording_id, version, fields, actor, origin, at)"
            " VALUES('r', ?, ?, 't', 'cli', '2026-10-01T00:00:00+00:00')",
            (version, fields),
        )
        untagged = conn.execute("SELECT untagged FROM recordings").fetchone()[0]
        assert untagged == (version == 2)
    ledger.close()


def test_migration_fills_the_rows_of_an_older_ledger(tmp_path: Path) -> None:
    """A ledger at the schema before 0017 with recordings in it upgrades in place."""
    from agent.ledger import db

    path = tmp_path / "old" / "ledger.sqlite3"
    path.parent.mkdir()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for number, name, sql in db._migrations():
        if number >= 17:
            break
        if name.endswith(".py"):
            db._run_python_migration(conn, name, {"data": path.parent}, None)
        for stmt in db._split_sql(sql):
            conn.execute(stmt)
        conn.execute(f"PRAGMA user_version={number}")
    conn.execute("COMMIT")
    conn.execute(
        "INSERT INTO devices(id, vendor, serial, serial_source, first_seen)"
        " VALUES(1, 'v', 'S', 'devinfo', '2026-01-01T00:00:00+00:00')"
    )
    _insert(conn, "old", "2026-09-30T09:00:00.25+08:00", "2026-10-09T23:59:59.999999+08:00", None)
    conn.execute(
        "INSERT INTO metadata_versions(recording_id, version, fields, actor, origin, at)"
        " VALUES('old', 1, '{\"case_number\": \"C-9\"}', 't', 'cli', '2026-10-01T00:00:00+00:00')"
    )
    conn.execute("UPDATE recordings SET metadata_version = 1")
    conn.close()
    ledger = Ledger(path)
    row = (
        ledger.connect()
        .execute("SELECT made_us, due_us, met_us, untagged FROM recordings")
        .fetchone()
    )
    made = to_us(datetime.fromisoformat("2026-09-30T09:00:00.25+08:00"))
    due = to_us(datetime.fromisoformat("2026-10-09T23:59:59.999999+08:00"))
    assert tuple(row) == (made, due, None, 0)
    ledger.close()


def test_the_attention_states_as_sql_text_are_the_attention_states() -> None:
    from agent.compliance import report_query as rq

    assert "(" + ", ".join(f"'{s}'" for s in rq.ATTENTION) + ")" == rq.ATTENTION_SQL
