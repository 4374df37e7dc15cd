"""Metadata validation and assignment-rule matching (pure: no ledger, fixed times)."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from agent.compliance.report_text import default_lang, reason
from agent.config.compliance import AssignmentRule
from agent.config.loader import AgentConfig
from agent.core.errors import TagError
from agent.tagging.autotag import rule_matches
from agent.tagging.metadata import Validator, normalize_keys

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 1, 12, 0, tzinfo=SH)


def validator(officers: set[str] | None = None, **tagging: object) -> Validator:
    cfg = AgentConfig.model_validate({"tagging": tagging})
    return Validator(cfg, officers, now=NOW)


def test_chinese_keys_and_normalised_values() -> None:
    out = validator().validate(
        {
            "案件编号": 2026001,
            "采集时间": "2026-09-30T08:15",
            "证明对象": " 现场检查\n笔录 ",
            "importance": "重大",
            "采集地点": "",
        }
    )
    assert out == {
        "case_number": "2026001",
        "capture_time": "2026-09-30T08:15:00+08:00",
        "proves": "现场检查\n笔录",
        "importance": "critical",
        "capture_place": None,  # "" clears
    }


def test_capture_time_in_utc_is_stored_in_station_time_and_future_refused() -> None:
    v = validator()
    assert v.validate({"capture_time": "2026-10-01T03:59:59Z"}) == {
        "capture_time": "2026-10-01T11:59:59+08:00"
    }
    with pytest.raises(TagError, match=r"2026-10-01T12:00:01\+08:00 is in the future"):
        v.validate({"capture_time": "2026-10-01T12:00:01"})
    with pytest.raises(TagError, match="not an ISO-8601 time"):
        v.validate({"capture_time": "30/09/2026"})


def test_case_number_pattern_is_a_full_match() -> None:
    v = validator(case_number_pattern=r"环罚〔\d{4}〕\d+号")
    assert v.validate({"case_number": "环罚〔2026〕12号"})["case_number"] == "环罚〔2026〕12号"
    with pytest.raises(TagError, match="does not match the configured format"):
        v.validate({"case_number": "环罚〔2026〕12号补"})
    with pytest.raises(TagError, match="does not match"):
        validator().validate({"case_number": "a/b"})  # default: no spaces or slashes


def test_unknown_officer_only_checked_with_a_roster() -> None:
    assert validator(None).validate({"collector": "anyone"}) == {"collector": "anyone"}
    with pytest.raises(TagError, match="collector 'anyone' is not an officer in the roster"):
        validator({"310001"}).validate({"collector": "anyone"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"casenumber": "x"}, "unknown metadata field 'casenumber'"),
        ({"proves": "a\x00b"}, "control characters"),
        ({"capture_place": "x" * 201}, "201 characters, at most 200"),
        ({"case_number": True}, "expected text"),
        ({"serial": "ZFY/1"}, "serial 'ZFY/1' may contain only"),
    ],
)
def test_bad_values(fields: dict, message: str) -> None:
    with pytest.raises(TagError, match=message):
        validator().validate(fields)


def test_normalize_keys_rejects_unknown() -> None:
    assert normalize_keys({"采集人": "1"}) == {"collector": "1"}
    with pytest.raises(TagError, match="valid fields: case_number, capture_time"):
        normalize_keys({"who": "1"})


def row(officer: str, start: str) -> sqlite3.Row:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    return conn.execute(
        "SELECT ? AS officer_id, 'U1' AS unit_id, 'S1' AS serial, ? AS start", (officer, start)
    ).fetchone()


def test_assignment_rule_window_is_start_time_local_half_open() -> None:
    rule = AssignmentRule(
        officer_id="X",
        date_from=date(2026, 9, 30),
        date_to=date(2026, 9, 30),
        time_from=time(8),
        time_to=time(12),
        fields={"case_number": "C"},
    )
    assert rule_matches(rule, row("X", "2026-09-30T08:00:00+08:00"), SH)
    assert rule_matches(rule, row("X", "2026-09-30T03:59:59+00:00"), SH)  # 11:59:59 local
    assert not rule_matches(rule, row("X", "2026-09-30T12:00:00+08:00"), SH)
    assert not rule_matches(rule, row("Y", "2026-09-30T09:00:00+08:00"), SH)
    assert not rule_matches(rule, row("X", "2026-10-01T09:00:00+08:00"), SH)


def test_report_language_follows_the_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert default_lang() == "zh"
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert default_lang() == "en"
    assert reason("zh", "not seen for 31 days") == "31 天未接入"
    assert reason("zh", "lost") == "丢失"
