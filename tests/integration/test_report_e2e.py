"""`evidence-agent report` and `check-config` for the compliance parts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from agent.ingest.ingestor import Ingestor
from fixtures.compliance import SH, FixedClock, Result, write_inventory, write_roster
from fixtures.station import Station


@pytest.fixture
def fleet(make_station: Callable[..., Station], tmp_path: Path) -> tuple[Station, Path, Path]:
    roster = write_roster(tmp_path / "roster.csv", {"U1": 23}, inactive=3)
    inventory = write_inventory(
        tmp_path / "inventory.csv",
        [(f"R{i}", "U1", "in_service") for i in range(4)] + [("R9", "U1", "repair")],
    )
    st = make_station(f'[roster]\nfile = "{roster}"\n[inventory]\nfile = "{inventory}"\n')
    return st, roster, inventory


def unit(doc: dict, unit_id: str) -> dict:
    return next(u for u in doc["units"] if u["unit"] == unit_id)


def test_ratio_23_officers_needs_5_recorders_repair_does_not_count(
    fleet: tuple[Station, Path, Path],
) -> None:
    st, _, inventory = fleet
    r = st.cli("report", "--json", check=True)
    u1 = unit(r_json(r.stdout), "U1")
    assert (u1["active_officers"], u1["recorders_counted"], u1["ratio"], u1["required"]) == (
        23,
        4,
        5,
        5,
    )
    assert u1["compliant"] is False
    assert u1["not_counted"] == [{"serial": "R9", "reason": "repair"}]
    assert u1["local"] is True

    with inventory.open("a", encoding="utf-8") as fh:
        fh.write("ZFY,R4,U1,,在用,新配发\n")
    u1 = unit(r_json(st.cli("report", "--json", check=True).stdout), "U1")
    assert (u1["recorders_counted"], u1["required"], u1["compliant"]) == (5, 5, True)


def r_json(text: str) -> dict:
    return json.loads(text)


def test_broken_roster_keeps_the_previous_good_one_in_force(
    fleet: tuple[Station, Path, Path],
) -> None:
    st, roster, _ = fleet
    assert unit(r_json(st.cli("report", "--json", check=True).stdout), "U1")["required"] == 5
    # An edit in a GBK spreadsheet export duplicates an officer: the report still runs, on
    # the last good roster, and says what is wrong where.
    text = roster.read_text("utf-8") + "U1-001,重复,U1,U1大队,1\n"
    roster.write_bytes(text.encode("gbk"))
    r = st.cli("report", "--json")
    assert r.returncode == 0
    doc = r_json(r.stdout)
    assert unit(doc, "U1")["active_officers"] == 23
    (problem,) = doc["problems"]
    assert f"{roster}: line 28, column 'officer_id': 'U1-001' already on line 3" in problem
    assert "previous good data stays in force" in problem
    assert problem in r.stderr


def test_csv_has_a_bom_and_chinese_or_english_headings(fleet: tuple[Station, Path, Path]) -> None:
    st, _, _ = fleet
    out = st.dir / "report.csv"
    st.cli("report", "--csv", "--lang", "zh", "--output", str(out), check=True)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["存储期限（按规则时限存储）"]
    assert rows[1] == ["指标", "数量"]
    assert [
        "单位",
        "单位名称",
        "在岗执法人员",
        "在用记录仪",
        "每台人数",
        "应配数量",
        "是否达标",
        "未计入（原因）",
    ] in rows
    assert ["U1", "U1大队", "23", "4", "5", "5", "否", "R9 (维修)"] in rows

    r = st.cli("report", "--csv", "--lang", "en", "--section", "units", check=True)
    rows = list(csv.reader(io.StringIO(r.stdout.lstrip("\ufeff"))))
    assert rows == [
        [
            "unit",
            "unit name",
            "active officers",
            "recorders counted",
            "officers per recorder",
            "required",
            "compliant",
            "not counted (why)",
        ],
        ["U1", "U1大队", "23", "4", "5", "5", "no", "R9 (repair)"],
    ]


def test_report_counts_by_period_and_unit(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
    run_cli: Callable[..., Result],
    fixed_now: FixedClock,
    tmp_path: Path,
) -> None:
    st = make_station()
    # Unit A: two clips on Sep 25, copied that evening (met). Unit B: one clip on Sep 28,
    # recorder pulled before copying (missed by Oct 20), and one on Oct 19 (open).
    fixed_now.set(2026, 9, 25, 20)
    a, _ = bodycam(
        out=st.mount_root / "A1",
        serial="A1",
        unit="A",
        clips=2,
        seconds=1.0,
        start=datetime(2026, 9, 25, 10, 0, tzinfo=SH),
    )
    assert run_cli(st, "ingest", str(a)).rc == 0
    for day, serial in ((28, "B1"), (19, "B2")):
        month = 9 if day == 28 else 10
        fixed_now.set(2026, month, day, 20)
        vol, _ = bodycam(
            out=tmp_path / serial,
            serial=serial,
            unit="B",
            clips=1,
            seconds=1.0,
            start=datetime(2026, month, day, 10, 0, tzinfo=SH),
        )
        ing = Ingestor(st.context())
        ing.register_volume(vol)
        ing.undock(vol)
    rid = run_cli(st, "status", "--json").json()["recordings"][-1]["id"]
    assert run_cli(st, "tag", rid, "--case-number", "C-1", "--operator", "o1").rc == 0

    fixed_now.set(2026, 10, 20, 12)
    doc = run_cli(st, "report", "--json").json()
    assert doc["schema"] == "evidence-agent/report/1"
    assert doc["deadlines"] == {
        "total": 4,
        "met": 2,
        "met_late": 0,
        "open": 1,
        "at_risk": 0,
        "missed": 1,
        "no_deadline": 0,
        "warn_before_hours": 12.0,
    }
    assert doc["untagged"] == {"count": 3, "overdue": 2, "older_than_hours": 48.0}
    assert [d["serial"] for d in doc["recorders_not_docked"]] == ["B1"]
    assert doc["units"] == [] and doc["roster_configured"] is False

    sept = run_cli(st, "report", "--json", "--from", "2026-09-01", "--to", "2026-09-30").json()
    assert sept["period"] == {"from": "2026-09-01", "to": "2026-09-30"}
    assert (sept["deadlines"]["total"], sept["deadlines"]["missed"]) == (3, 1)
    only_b = run_cli(st, "report", "--json", "--unit", "B").json()
    assert {r["serial"] for r in only_b["recordings"]} == {"B1", "B2"}
    assert [r["deadline_status"] for r in only_b["recordings"]] == ["missed", "open"]

    table = run_cli(st, "report", "--lang", "zh")
    assert table.rc == 0
    assert "合规统计报告" in table.out and "已逾期" in table.out
    assert "未配置人员名单" in table.out
    bad = run_cli(st, "report", "--from", "30.09.2026")
    assert bad.rc == 1 and "is not a date (YYYY-MM-DD)" in bad.err


def test_check_config_rejects_a_contradicting_calendar_override(
    make_station: Callable[..., Station], tmp_path: Path
) -> None:
    overrides = tmp_path / "calendar-overrides.toml"
    overrides.write_text(
        '[[day]]\ndate = "2026-11-02"\nkind = "holiday"\n'
        '[[day]]\ndate = "2026-11-02"\nkind = "workday"\n',
        encoding="utf-8",
    )
    st = make_station(f'[compliance]\ncalendar_overrides = "{overrides}"\n')
    r = st.cli("check-config")
    assert r.returncode == 78
    assert "compliance.calendar_overrides:" in r.stderr
    assert "entry 2 (date 2026-11-02)" in r.stderr and "contradicts entry 1" in r.stderr


def test_check_config_validates_assignment_rules(
    make_station: Callable[..., Station], tmp_path: Path
) -> None:
    roster = write_roster(tmp_path / "roster.csv", {"U1": 2})
    st = make_station(
        f'[roster]\nfile = "{roster}"\n'
        "[[tagging.assign]]\nofficer_id = 'U1-000'\ntime_from = 12:00:00\ntime_to = 08:00:00\n"
        "fields = { collector = 'ghost' }\n"
        "[[tagging.assign]]\nfields = { casenumber = 'C' }\n"
    )
    r = st.cli("check-config")
    assert r.returncode == 78
    assert "tagging.assign.1.fields: Value error, unknown metadata keys ['casenumber']" in r.stderr
    st = make_station(
        f'[roster]\nfile = "{roster}"\n'
        "[[tagging.assign]]\nofficer_id = 'U1-000'\ntime_from = 12:00:00\ntime_to = 08:00:00\n"
        "fields = { collector = 'ghost' }\n",
        name="st2",
    )
    r = st.cli("check-config")
    assert r.returncode == 78
    assert "tagging.assign.0.fields: collector 'ghost' is not an officer in the roster" in r.stderr
    assert "tagging.assign.0: time_from must be before time_to" in r.stderr
