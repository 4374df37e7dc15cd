"""Working-day calendar and deadline rules on fixed 2026 dates (never on today's date)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.rules.workcal import (
    CalendarError,
    CalendarOverrides,
    DeadlineRule,
    WorkCalendar,
    deadline,
    deadline_status,
    load_overrides,
)

SH = ZoneInfo("Asia/Shanghai")
TWO_DAYS = DeadlineRule()


def end_of(d: date) -> datetime:
    return datetime.combine(d, time.max, tzinfo=SH)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


def test_mid_autumn_friday_moves_to_tuesday(cal: WorkCalendar) -> None:
    due = deadline(datetime(2026, 9, 25, 16, 0, tzinfo=SH), TWO_DAYS, cal)
    assert due == end_of(date(2026, 9, 29))
    assert due.utcoffset() == timedelta(hours=8)
    assert due.isoformat() == "2026-09-29T23:59:59.999999+08:00"


def test_national_day_skips_to_friday_not_makeup_saturday(cal: WorkCalendar) -> None:
    due = deadline(datetime(2026, 9, 30, 18, 0, tzinfo=SH), TWO_DAYS, cal)
    assert due == end_of(date(2026, 10, 9))
    # The make-up Saturday is a working day, but the 2nd one after Sep 30 is Friday Oct 9.
    assert cal.is_working_day(date(2026, 10, 10))


def test_makeup_saturday_before_spring_festival(cal: WorkCalendar) -> None:
    assert cal.is_working_day(date(2026, 2, 14))
    due = deadline(datetime(2026, 2, 14, 11, 0, tzinfo=SH), TWO_DAYS, cal)
    assert due == end_of(date(2026, 2, 25))


def test_hours_rule_is_end_plus_hours_in_calendar_zone(cal: WorkCalendar) -> None:
    rule = DeadlineRule.model_validate({"kind": "hours", "hours": 24})
    due = deadline(datetime(2026, 9, 30, 10, 0, tzinfo=UTC), rule, cal)
    assert due == datetime(2026, 10, 1, 18, 0, tzinfo=SH)  # holidays do not matter here
    assert due.tzinfo == SH


def test_rule_kind_is_validated() -> None:
    with pytest.raises(ValueError):
        DeadlineRule.model_validate({"kind": "weeks", "weeks": 1})
    with pytest.raises(ValueError):
        DeadlineRule.model_validate({"kind": "working_days", "days": 0})


def test_naive_end_rejected(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(datetime(2026, 9, 25, 16, 0), TWO_DAYS, cal)


def test_utc_late_evening_is_next_local_day(cal: WorkCalendar) -> None:
    # 2026-09-29 23:30 UTC is 2026-09-30 07:30 in Shanghai: the day of the recording is Sep 30.
    end = datetime(2026, 9, 29, 23, 30, tzinfo=UTC)
    assert cal.local_date(end) == date(2026, 9, 30)
    assert deadline(end, TWO_DAYS, cal) == end_of(date(2026, 10, 9))
    # Read as a UTC date (Sep 29) it would have been Oct 8.
    assert cal.nth_working_day_after(date(2026, 9, 29), 2) == date(2026, 10, 8)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar-overrides.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_override_holiday_shifts_deadline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[day]]\ndate = "2026-09-28"\nkind = "holiday"\nnote = "本地放假"\n',
    )
    cal = WorkCalendar(overrides=load_overrides(path))
    assert not cal.is_working_day(date(2026, 9, 28))
    due = deadline(datetime(2026, 9, 25, 16, 0, tzinfo=SH), TWO_DAYS, cal)
    assert due == end_of(date(2026, 9, 30))


def test_override_workday_on_library_holiday(tmp_path: Path) -> None:
    path = write(tmp_path, "[[day]]\ndate = 2026-10-08\nkind = 'holiday'\n"
                 "[[day]]\ndate = 2026-10-01\nkind = 'workday'\n")  # fmt: skip
    cal = WorkCalendar(overrides=load_overrides(path))
    assert cal.nth_working_day_after(date(2026, 9, 30), 2) == date(2026, 10, 9)


def test_contradictory_override_names_file_entry_and_date(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[day]]\ndate = "2026-11-02"\nkind = "holiday"\n'
        '[[day]]\ndate = "2026-11-03"\nkind = "holiday"\n'
        '[[day]]\ndate = "2026-11-02"\nkind = "workday"\n',
    )
    with pytest.raises(CalendarError) as err:
        load_overrides(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "entry 3" in msg and "entry 1" in msg
    assert "2026-11-02" in msg
    assert isinstance(err.value, ValueError)


def test_bad_date_and_unknown_key_name_the_entry(tmp_path: Path) -> None:
    path = write(tmp_path, '[[day]]\ndate = "2026-02-30"\nkind = "holiday"\n')
    with pytest.raises(CalendarError, match=r"entry 1 \(date 2026-02-30\): date"):
        load_overrides(path)
    path = write(tmp_path, '[[day]]\ndate = "2026-11-02"\nkind = "holiday"\nwhy = "x"\n')
    with pytest.raises(CalendarError, match=r"entry 1 \(date 2026-11-02\): why"):
        load_overrides(path)


def test_same_date_same_kind_twice_is_accepted() -> None:
    ov = CalendarOverrides.model_validate({"day": [{"date": "2026-11-02", "kind": "holiday"}] * 2})
    assert ov.as_dict() == {date(2026, 11, 2): False}


def test_shipped_overrides_file_loads_and_changes_nothing() -> None:
    path = Path(__file__).resolve().parents[2] / "config" / "calendar-overrides.toml"
    assert load_overrides(path).day == []


def test_missing_file_is_a_calendar_error(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="nope.toml"):
        load_overrides(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("met_at", "now", "expected"),
    [
        (datetime(2026, 9, 28, 9, 0, tzinfo=SH), None, "met"),
        (end_of(date(2026, 9, 29)), None, "met"),
        (datetime(2026, 9, 30, 0, 0, tzinfo=SH), None, "met_late"),
        (None, datetime(2026, 9, 28, 12, 0, tzinfo=SH), "open"),
        (None, datetime(2026, 9, 29, 20, 0, tzinfo=SH), "at_risk"),
        (None, end_of(date(2026, 9, 29)), "at_risk"),
        (None, datetime(2026, 9, 30, 0, 0, tzinfo=SH), "missed"),
    ],
)
def test_deadline_status(met_at: datetime | None, now: datetime | None, expected: str) -> None:
    due = end_of(date(2026, 9, 29))
    now = now or datetime(2026, 10, 20, tzinfo=SH)
    assert deadline_status(due, met_at, now, timedelta(hours=6)) == expected


def test_a_station_that_only_reads_status_never_loads_the_holiday_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # `holidays.countries` imports every country (~0.35 s of every `status`): the calendar is
    # built on first use and the daemon keeps today's 调休 warning in the ledger for readers.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from datetime import datetime, timezone\n"
        "from agent.rules.workcal import WorkCalendar\n"
        "cal = WorkCalendar('Asia/Shanghai')\n"
        "cal.local_date(datetime.now(timezone.utc))\n"
        "assert 'holidays' not in sys.modules, 'holidays loaded without a working-day question'\n"
        "assert cal.is_working_day(datetime(2026, 10, 1).date()) is False\n"
        "assert 'holidays' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
