"""Fleet view: the per-unit ratio across the docks of two stations on one real broker."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate, wait_ledger

SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"


def _files(base: Path) -> tuple[Path, Path]:
    inventory = base / "inventory.csv"
    inventory.write_text(
        "vendor,serial,unit_id,officer_id,status,note\n"
        "ZFY,ZFYA1,U1,,in_service,\n"
        "ZFY,ZFYAB2,U1,,in_service,\n"
        "ZFY,ZFYB3,U1,,in_service,\n"
        "ZFY,ZFYR9,U1,,repair,\n",
        encoding="utf-8",
    )
    roster = base / "roster.csv"
    # 11 active officers in U1: at 1:5 the unit needs ceil(11/5) = 3 recorders in service.
    rows = [f"P{i:03d},Officer {i},U1,Unit one,1" for i in range(11)]
    roster.write_text(
        "officer_id,name,unit_id,unit_name,active\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return inventory, roster


def _station(make_station, broker, tmp_path: Path, name: str, aggregate: bool):  # type: ignore[no-untyped-def]
    inventory, roster = _files(tmp_path)
    extra = mqtt_config(broker.url) + (
        f'\n[inventory]\nfile = "{inventory}"\n[roster]\nfile = "{roster}"\n'
        f"[fleet]\naggregate = {'true' if aggregate else 'false'}\n"
    )
    st = make_station(extra, name=name)
    st.config_path.write_text(
        st.config_path.read_text().replace('id = "test-station"', f'id = "{name}"')
    )
    return st


def test_fleet_ratio_counts_recorders_seen_by_both_stations(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    a = _station(make_station, broker, tmp_path, "station-a", aggregate=True)
    b = _station(make_station, broker, tmp_path, "station-b", aggregate=False)
    sub = subscribe(broker, "evidence/#")
    with running(a), running(b):
        # A sees ZFYA1 and ZFYAB2, B sees ZFYAB2, ZFYB3 and ZFYR9 (in repair): 3 distinct in
        # service, so the unit is compliant only when both docks count.
        drop_volume(a, tmp_path / "a", "ZFYA1", 1, unit="U1")
        drop_volume(a, tmp_path / "a", "ZFYAB2", 1, unit="U1")
        drop_volume(b, tmp_path / "b", "ZFYAB2", 1, unit="U1")
        drop_volume(b, tmp_path / "b", "ZFYB3", 1, unit="U1")
        drop_volume(b, tmp_path / "b", "ZFYR9", 1, unit="U1")
        wait_ledger(a, SPOOLED, 2)
        wait_ledger(b, SPOOLED, 3)
        ratio = sub.wait_for(
            lambda m: m.topic == "evidence/units/U1/ratio" and m.json()["recorders_counted"] == 3,
            timeout=30,
        ).json()
        # The local view of station A (its compliance topic) only has its own inventory rule.
        compliance = sub.latest("evidence/station-a/compliance")

    validate("unit-ratio", ratio)
    validate("compliance", compliance)
    assert ratio["recorders"] == ["ZFYA1", "ZFYAB2", "ZFYB3"]
    assert ratio["stations"] == ["station-a", "station-b"]
    assert ratio["active_officers"] == 11 and ratio["required"] == 3 and ratio["compliant"]
    assert ratio["not_counted"] == [{"serial": "ZFYR9", "reason": "repair"}]
    # Only the aggregating station ever publishes the fleet topic.
    unit_msgs = [m for m in sub.messages if m.topic.startswith("evidence/units/")]
    assert unit_msgs and all(m.json()["computed_by"] == "station-a" for m in unit_msgs)


def test_without_aggregate_no_fleet_topic(make_station, broker, subscribe, tmp_path) -> None:  # type: ignore[no-untyped-def]
    b = _station(make_station, broker, tmp_path, "station-b", aggregate=False)
    sub = subscribe(broker, "#")
    with running(b):
        drop_volume(b, tmp_path / "b", "ZFYB3", 1, unit="U1")
        wait_ledger(b, SPOOLED, 1)
        sub.wait_for(lambda m: m.topic == "evidence/station-b/recorders/ZFYB3/state")
        station = sub.wait_for(
            lambda m: (
                m.topic.endswith("/station/config") and "unit_U1_ratio" in m.json()["components"]
            )
        ).json()
    unit = station["components"]["unit_U1_ratio"]
    assert unit["state_topic"] == "evidence/station-b/compliance"
    assert not [m for m in sub.messages if m.topic.startswith("evidence/units/")]


def test_a_recorder_claiming_another_unit_counts_under_the_inventory_unit(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    # Issue 18: the inventory owns a recorder's unit. ZFYB3 is listed under U1 but its own
    # settings say U9: the fleet and the local ratio both count it under U1, no phantom U9
    # appears, and its state flags the claim.
    a = _station(make_station, broker, tmp_path, "station-a", aggregate=True)
    sub = subscribe(broker, "evidence/#")
    with running(a):
        drop_volume(a, tmp_path / "a", "ZFYA1", 1, unit="U1")
        drop_volume(a, tmp_path / "a", "ZFYAB2", 1, unit="U1")
        drop_volume(a, tmp_path / "a", "ZFYB3", 1, unit="U9")
        wait_ledger(a, SPOOLED, 3)
        ratio = sub.wait_for(
            lambda m: m.topic == "evidence/units/U1/ratio" and m.json()["recorders_counted"] == 3,
            timeout=30,
        ).json()
        state = sub.wait_for(
            lambda m: (
                m.topic == "evidence/station-a/recorders/ZFYB3/state"
                and m.json().get("unit_reported") == "U9"
            )
        ).json()
        compliance = sub.latest("evidence/station-a/compliance")
    validate("recorder-state", state)
    assert state["unit"] == "U1"
    assert ratio["recorders"] == ["ZFYA1", "ZFYAB2", "ZFYB3"] and ratio["compliant"]
    assert not [m for m in sub.messages if m.topic.startswith("evidence/units/U9")]
    local = {u["unit"]: u for u in compliance["units"]}
    assert set(local) == {"U1"} and local["U1"]["compliant"], local
    status = a.cli("status", "--json")
    rec = {r["serial"]: r for r in json.loads(status.stdout)["recorders"]}
    assert rec["ZFYB3"]["unit"] == "U1" and rec["ZFYB3"]["unit_reported"] == "U9"
    assert rec["ZFYA1"]["unit_reported"] is None
