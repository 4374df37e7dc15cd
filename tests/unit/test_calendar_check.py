"""From 1 November, a missing make-up-workday schedule (调休) for next year is a warning on
status, the MQTT compliance payload and check-config (issue 15, item 5)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from agent.actions import status
from agent.cli import main as cli
from agent.compliance.calendar_check import library_makeup_workdays, makeup_workdays_warning
from agent.compliance.engine import compliance_summary
from agent.rules.workcal import WorkCalendar, load_overrides
from fixtures.compliance import FixedClock
from fixtures.station import Station


def test_no_warning_before_november() -> None:
    assert makeup_workdays_warning(date(2099, 10, 31), WorkCalendar()) is None


def test_warning_from_november_when_next_year_has_no_makeup_workdays() -> None:
    text = makeup_workdays_warning(date(2099, 11, 1), WorkCalendar())
    assert text is not None
    assert "2100" in text and "调休" in text
    assert "compliance.calendar_overrides" in text and "holidays" in text


def test_the_installed_library_knows_the_2026_schedule() -> None:
    # The dependency floor (holidays>=0.85) is the first release with the 2026 State Council
    # notice; 2026-01-04 (Sunday) is a make-up workday in it.
    assert date(2026, 1, 4) in library_makeup_workdays(2026)
    assert makeup_workdays_warning(date(2025, 11, 1), WorkCalendar()) is None


def test_local_overrides_with_next_years_workdays_silence_it(tmp_path: Path) -> None:
    path = tmp_path / "calendar-overrides.toml"
    path.write_text('[[day]]\ndate = 2100-02-07\nkind = "workday"\n', encoding="utf-8")
    cal = WorkCalendar("Asia/Shanghai", load_overrides(path))
    assert makeup_workdays_warning(date(2099, 11, 1), cal) is None
    holiday_only = tmp_path / "holiday-only.toml"
    holiday_only.write_text('[[day]]\ndate = 2100-02-08\nkind = "holiday"\n', encoding="utf-8")
    cal = WorkCalendar("Asia/Shanghai", load_overrides(holiday_only))
    assert makeup_workdays_warning(date(2099, 11, 1), cal) is not None


def test_status_compliance_and_check_config_carry_the_warning(
    station: Station,
    fixed_now: FixedClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fixed_now.set(2099, 11, 2, 9)
    ctx = station.context()
    assert "2100" in status.document(ctx)["station"]["calendar_warning"]
    assert "2100" in compliance_summary(ctx)["calendar_warning"]
    assert cli.main(["--config", str(station.config_path), "check-config"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "2100" in err
    fixed_now.set(2099, 10, 2, 9)
    assert status.document(ctx)["station"]["calendar_warning"] is None
    assert compliance_summary(ctx)["calendar_warning"] is None


def test_status_text_view_shows_the_warning(
    station: Station, fixed_now: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed_now.set(2099, 11, 2, 9)
    assert cli.main(["--config", str(station.config_path), "status"]) == 0
    assert "调休" in capsys.readouterr().out
