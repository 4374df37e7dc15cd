"""Roster and inventory CSV loading: encodings, precise errors, last-good cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.rules.roster import (
    InventoryStatus,
    RosterCache,
    RosterError,
    load_inventory,
    load_roster,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"

ROSTER = (
    "officer_id,name,unit_id,unit_name,active\n"
    "100001,张伟,HB-01,环保执法一大队,是\n"
    "100002,李娜,HB-01,环保执法一大队,0\n"
    "100003,王强,HB-02,环保执法二大队,yes\n"
)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_roster_loads_in_each_encoding(tmp_path: Path, encoding: str) -> None:
    officers = load_roster(write(tmp_path, "roster.csv", ROSTER, encoding))
    assert [(o.officer_id, o.name, o.active) for o in officers] == [
        ("100001", "张伟", True),
        ("100002", "李娜", False),
        ("100003", "王强", True),
    ]
    assert officers[0].unit_name == "环保执法一大队"


def test_missing_column_names_file_line_column(tmp_path: Path) -> None:
    path = write(tmp_path, "roster.csv", "officer_id,name,unit_id,active\n1,张伟,U1,1\n")
    with pytest.raises(RosterError) as err:
        load_roster(path)
    assert str(err.value) == f"{path}: line 1, column 'unit_name': missing from the header"


def test_duplicate_officer_id_names_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "roster.csv", ROSTER + "\n100002,李四,HB-02,二大队,1\n")
    with pytest.raises(RosterError) as err:
        load_roster(path)
    # Line 6: the blank line 5 is skipped but still counted.
    assert str(err.value) == (f"{path}: line 6, column 'officer_id': '100002' already on line 3")


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (",张伟,HB-01,一大队,1", "officer_id"),
        ("100009,张伟,HB-01,一大队,maybe", "active"),
        ("100009,张伟,HB 01,一大队,1", "unit_id"),
        ("100009,张伟,HB-01", "unit_name"),
    ],
)
def test_bad_roster_rows(tmp_path: Path, row: str, column: str) -> None:
    path = write(tmp_path, "roster.csv", ROSTER + row + "\n", "gbk")
    with pytest.raises(RosterError, match=rf"line 5, column '{column}'") as err:
        load_roster(path)
    assert str(path) in str(err.value)


INVENTORY = (
    "vendor,serial,unit_id,officer_id,status,note\n"
    "hikvision,HK0001,HB-01,100001,in_service,\n"
    "hikvision,HK0002,HB-01,,在用,备用机\n"
    "jingyi,JY0001,HB-02,100003,维修,屏幕损坏\n"
    "jingyi,JY0002,HB-02,,lost,\n"
)


def test_inventory_loads_chinese_statuses(tmp_path: Path) -> None:
    items = load_inventory(write(tmp_path, "inventory.csv", INVENTORY, "gbk"))
    assert [i.status for i in items] == [
        InventoryStatus.IN_SERVICE,
        InventoryStatus.IN_SERVICE,
        InventoryStatus.REPAIR,
        InventoryStatus.LOST,
    ]
    assert items[1].officer_id is None and items[1].note == "备用机"


def test_bad_status_names_file_line_column(tmp_path: Path) -> None:
    path = write(tmp_path, "inventory.csv", INVENTORY + "jingyi,JY0003,HB-02,,borrowed,\n")
    with pytest.raises(RosterError) as err:
        load_inventory(path)
    assert str(err.value).startswith(f"{path}: line 6, column 'status': status 'borrowed'")


def test_duplicate_recorder_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "inventory.csv", INVENTORY + "jingyi,JY0001,HB-01,,在用,\n")
    with pytest.raises(RosterError, match=r"line 6, column 'serial': recorder jingyi/JY0001 "
                       r"already on line 4"):  # fmt: skip
        load_inventory(path)


def test_example_files_load() -> None:
    officers = load_roster(CONFIG / "roster.example.csv")
    items = load_inventory(CONFIG / "inventory.example.csv")
    assert officers and items
    assert {i.unit_id for i in items} <= {o.unit_id for o in officers}


def test_cache_keeps_previous_good_roster(tmp_path: Path) -> None:
    roster = write(tmp_path, "roster.csv", ROSTER)
    inventory = write(tmp_path, "inventory.csv", INVENTORY)
    cache = RosterCache(roster, inventory)
    assert cache.officers == () and cache.inventory is None
    assert cache.reload() is None
    good = cache.officers
    assert len(good) == 3

    roster.write_text("officer_id,name\n1,x\n", encoding="utf-8")
    error = cache.reload()
    assert error is not None and str(roster) in error and "'unit_id'" in error
    assert cache.officers == good
    # The inventory is independent and still reloads.
    assert cache.inventory_item("jingyi", "JY0001") is not None

    roster.write_text(ROSTER + "100004,赵敏,HB-02,二大队,1\n", encoding="utf-8")
    assert cache.reload() is None
    assert len(cache.officers) == 4


def test_cache_before_first_good_load(tmp_path: Path) -> None:
    cache = RosterCache(tmp_path / "missing.csv", tmp_path / "missing-inv.csv")
    error = cache.reload()
    assert error is not None and "missing.csv" in error and "missing-inv.csv" in error
    assert cache.officers == () and cache.inventory is None
