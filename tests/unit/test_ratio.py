"""The one-recorder-per-five-officers rule, per unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.rules.ratio import Recorder, UnitRatio, recorders_from_inventory, unit_ratios
from agent.rules.roster import InventoryItem, InventoryStatus, Officer

NOW = datetime(2026, 9, 30, 12, 0, tzinfo=UTC)


def officers(unit: str, n: int, inactive: int = 0) -> list[Officer]:
    return [
        Officer(f"{unit}-{i:03d}", f"警员{i}", unit, "一大队", active=i >= inactive)
        for i in range(n + inactive)
    ]


def recorders(unit: str, n: int, status: str = "in_service", first: int = 0) -> list[Recorder]:
    return [Recorder("sim", f"{unit}{i:04d}", unit, status) for i in range(first, first + n)]


def only(result: list[UnitRatio]) -> UnitRatio:
    assert len(result) == 1
    return result[0]


def test_23_officers_4_recorders_is_not_compliant() -> None:
    r = only(unit_ratios(officers("U1", 23, inactive=3), recorders("U1", 4)))
    assert (r.active_officers, r.recorders_counted, r.required, r.ratio) == (23, 4, 5, 5)
    assert not r.compliant
    assert r.unit_name == "一大队"


def test_one_more_recorder_makes_it_compliant() -> None:
    r = only(unit_ratios(officers("U1", 23), recorders("U1", 5)))
    assert r.compliant and r.recorders_counted == 5


def test_recorder_in_repair_does_not_count() -> None:
    fleet = recorders("U1", 4) + recorders("U1", 1, "repair", first=4)
    r = only(unit_ratios(officers("U1", 23), fleet))
    assert r.recorders_counted == 4 and not r.compliant
    assert r.not_counted == [("U10004", "repair")]


def test_per_unit_ratio_of_three() -> None:
    result = unit_ratios(
        officers("U1", 9) + officers("U2", 9),
        recorders("U1", 2) + recorders("U2", 2),
        ratio_by_unit={"U2": 3},
    )
    u1, u2 = result
    assert (u1.unit_id, u1.required, u1.compliant) == ("U1", 2, True)
    assert (u2.unit_id, u2.ratio, u2.required, u2.compliant) == ("U2", 3, 3, False)


def test_not_seen_recorder_does_not_count_unknown_does() -> None:
    fleet = [
        Recorder("sim", "A", "U1", "in_service", NOW - timedelta(days=2)),
        Recorder("sim", "B", "U1", "in_service", NOW - timedelta(days=10, hours=1)),
        Recorder("sim", "C", "U1", "in_service", None),
        Recorder("sim", "D", "U1", "lost", None),
    ]
    r = only(unit_ratios(officers("U1", 10), fleet, not_seen_days=7, now=NOW))
    assert r.recorders_counted == 2
    assert r.not_counted == [("B", "not seen for 10 days"), ("D", "lost")]


def test_same_recorder_from_two_stations_counts_once() -> None:
    rec = Recorder("sim", "A", "U1", "in_service", NOW)
    r = only(unit_ratios(officers("U1", 5), [rec, rec]))
    assert r.recorders_counted == 1


def test_unit_with_recorders_but_no_officers_is_listed() -> None:
    r = only(unit_ratios([], recorders("U9", 1)))
    assert (r.active_officers, r.required, r.compliant) == (0, 0, True)


def test_from_inventory_joins_last_seen() -> None:
    items = [InventoryItem("sim", "A", "U1", None, InventoryStatus.RETIRED, "")]
    (rec,) = recorders_from_inventory(items, {("sim", "A"): NOW})
    assert (rec.status, rec.last_seen) == ("retired", NOW)
    r = only(unit_ratios(officers("U1", 1), [rec]))
    assert r.not_counted == [("A", "retired")]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        unit_ratios([], [], {"U1": 0})
    with pytest.raises(ValueError):
        unit_ratios([], [], not_seen_days=7)
