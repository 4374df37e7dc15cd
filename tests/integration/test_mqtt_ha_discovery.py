"""Home Assistant device-based discovery as HA's current docs expect (issue 14, item 4).

Against a real Mosquitto: every config validates against a closed schema written from HA's
MQTT discovery docs (no `object_id`; `default_entity_id` and `origin` present; ids of
`[A-Za-z0-9_-]`; `unique_id` unique), every `value_template` rendered with jinja2 against the
real payload on its state topic yields the value, a station id with `.` and the units
`执法一大队`/`执法二大队` give valid, distinct, working entities, a unit that goes away is
removed from the device, and v0.1.0's single-component configs are moved over and cleared.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jinja2
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.mqtt.ha_devices import ha_id
from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate, wait_ledger

SID = "dock.01"
P = f"evidence/{SID}"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"
UNITS = ("执法一大队", "执法二大队")
ENV = jinja2.Environment(undefined=jinja2.ChainableUndefined)


def _render(template: str, payload: dict[str, Any]) -> str:
    return ENV.from_string(template).render(value_json=payload).strip()


def _remote_recorder(port: int, station: str, serial: str, unit: str | None) -> None:
    """Another station's retained recorder state (what fleet aggregation reads); with no
    unit, the retained state is cleared (the recorder is gone)."""
    state = {
        "schema": 2,
        "station": station,
        "vendor": "ZFY",
        "serial": serial,
        "unit": unit,
        "status": "in_service",
        "docked": True,
        "last_docked": None,
    }
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    topic = f"evidence/{station}/recorders/{serial}/state"
    payload = json.dumps(state) if unit else b""
    c.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


def _station(make_station, broker, tmp_path: Path, roster_units: list[str]):  # type: ignore[no-untyped-def]
    roster = tmp_path / "roster.csv"
    rows = [f"P{i:03d},Officer {i},{u},,1" for i, u in enumerate(roster_units * 6)]
    roster.write_text("officer_id,name,unit_id,unit_name,active\n" + "\n".join(rows) + "\n")
    extra = mqtt_config(broker.url) + f'\n[roster]\nfile = "{roster}"\n[fleet]\naggregate = true\n'
    st = make_station(extra)
    st.config_path.write_text(
        st.config_path.read_text().replace('id = "test-station"', f'id = "{SID}"')
    )
    return st, roster


def _latest(sub, topic: str) -> Any:  # type: ignore[no-untyped-def]
    msgs = sub.on(topic)
    return msgs[-1].json() if msgs and msgs[-1].payload else None


def _device_configs(sub) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    topics = {m.topic for m in sub.messages if m.topic.startswith("homeassistant/device/")}
    return {t: c for t in topics if (c := _latest(sub, t)) is not None}


def test_device_discovery_validates_renders_and_follows_units(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    for serial, unit in zip(("R1", "R2"), UNITS, strict=True):
        _remote_recorder(broker.port, "remote-1", serial, unit)
    st, _ = _station(make_station, broker, tmp_path, ["U1"])
    sub = subscribe(broker, "homeassistant/#", "evidence/#")
    station_topic = f"homeassistant/device/evidence_{ha_id(SID)}/station/config"
    with running(st):
        drop_volume(st, tmp_path, "ZFY0001", 1, unit="U1")
        wait_ledger(st, SPOOLED, 1)

        def station_config() -> Any:
            return _device_configs(sub).get(station_topic)

        def has_units() -> bool:
            comps = (station_config() or {}).get("components", {})
            return sum(k.startswith("unit_") for k in comps) == 3

        sub.wait_until(has_units, timeout=30)
        sub.wait_until(lambda: any("recorder_ZFY0001" in t for t in _device_configs(sub)))
        sub.wait_for(lambda m: m.topic.endswith("/recorders/ZFY0001/state") and m.json()["docked"])
        time.sleep(1.0)  # let the retained state settle
        configs = _device_configs(sub)
        payloads = {
            m.topic: _latest(sub, m.topic)
            for m in sub.messages
            if m.payload.startswith(b"{") or not m.payload
        }

        # 1. The schema, ids and uniqueness.
        uids: list[str] = []
        for topic, config in configs.items():
            validate("ha-discovery", config)
            assert "object_id" not in json.dumps(config)
            assert topic.split("/")[2].replace("_", "").isalnum()
            uids += [c["unique_id"] for c in config["components"].values() if "unique_id" in c]
        assert len(uids) == len(set(uids)) and len(uids) >= 9 + 3 + 6

        # 2. Every template against the real payload on its state topic.
        rendered = {}
        for config in configs.values():
            for cid, comp in config["components"].items():
                payload = payloads.get(comp["state_topic"])
                assert payload is not None, (cid, comp["state_topic"])
                rendered[comp["unique_id"]] = (_render(comp["value_template"], payload), payload)
        station = configs[station_topic]
        comps = station["components"]
        ratio_comps = {comp["name"]: comp for k, comp in comps.items() if k.startswith("unit_")}
        assert set(ratio_comps) == {f"Unit {u} officers per recorder" for u in (*UNITS, "U1")}
        for unit in UNITS:  # 3. Chinese unit ids: distinct, valid, and the template works.
            comp = ratio_comps[f"Unit {unit} officers per recorder"]
            value, payload = rendered[comp["unique_id"]]
            assert payload["unit"] == unit and value == str(payload["officers_per_recorder"])
        ids = {ratio_comps[f"Unit {u} officers per recorder"]["unique_id"] for u in UNITS}
        assert len(ids) == 2
        state = payloads[f"{P}/state"]
        assert rendered[comps["queue_depth"]["unique_id"]][0] == str(state["queue"]["total"])
        assert rendered[comps["spool_free"]["unique_id"]][0] == str(state["spool_free_bytes"])
        clock = rendered[comps["clock_unsynchronised"]["unique_id"]][0]
        assert clock == ("OFF" if state["clock_synced"] else "ON")
        rec_state = payloads[f"{P}/recorders/ZFY0001/state"]
        rec_cfg = next(c for t, c in configs.items() if "recorder_ZFY0001" in t)
        rc = rec_cfg["components"]
        assert rendered[rc["docked"]["unique_id"]][0] == "ON"
        assert rendered[rc["files_pending"]["unique_id"]][0] == str(rec_state["files_pending"])
        assert rendered[rc["last_docked"]["unique_id"]][0] == rec_state["last_docked"]
        assert all(c["availability_topic"] == f"{P}/availability" for c in configs.values())

        # 4. A unit that goes away (its only recorder's retained state is cleared) is removed:
        # the device is republished without its component, the rest kept.
        gone = f"unit_{ha_id(UNITS[1])}_ratio"
        assert gone in station_config()["components"]
        _remote_recorder(broker.port, "remote-1", "R2", None)
        sub.wait_until(lambda: gone not in station_config()["components"], timeout=30)
        kept = f"unit_{ha_id(UNITS[0])}_ratio"
        validate("ha-discovery", station_config())
        assert {"queue_depth", kept} <= set(station_config()["components"])


def test_removed_device_and_v010_configs_are_cleared(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    st, _ = _station(make_station, broker, tmp_path, ["U1"])
    # What v0.1.0 left retained, and a device config for a recorder no longer reported.
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    legacy = "homeassistant/sensor/evidence_dock.01/queue_depth/config"
    gone = f"homeassistant/device/evidence_{ha_id(SID)}/recorder_OLD1/config"
    for topic in (legacy, gone):
        c.publish(
            topic,
            json.dumps({"components": {"battery": {"platform": "sensor", "unique_id": "x"}}}),
            qos=1,
            retain=True,
        ).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()
    sub = subscribe(broker, "homeassistant/#")
    with running(st):
        sub.wait_for(lambda m: m.topic == legacy and m.payload == b"", timeout=30)
        sub.wait_for(lambda m: m.topic == gone and m.payload == b"", timeout=30)
    legacy_msgs = [m.payload for m in sub.on(legacy)]
    assert json.loads(legacy_msgs[1]) == {"migrate_discovery": True}  # after the retained one
    assert legacy_msgs[-1] == b""
    station_cfgs = [m for m in sub.messages if m.topic.endswith("/station/config")]
    assert station_cfgs  # the device config went out before the old config was cleared
    # A late subscriber finds nothing retained on the old topic.
    late = subscribe(broker, "homeassistant/sensor/#")
    time.sleep(1.0)
    assert [m for m in late.messages if m.payload] == []


def test_discovery_switched_off_clears_what_the_station_left(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    st, _ = _station(make_station, broker, tmp_path, ["U1"])
    sub = subscribe(broker, "homeassistant/#")
    topic = f"homeassistant/device/evidence_{ha_id(SID)}/station/config"
    with running(st):
        sub.wait_for(lambda m: m.topic == topic and bool(m.payload))
    st.config_path.write_text(
        st.config_path.read_text().replace("[mqtt]\n", "[mqtt]\ndiscovery = false\n")
    )
    with running(st):
        sub.wait_for(lambda m: m.topic == topic and m.payload == b"", timeout=30)
    late = subscribe(broker, "homeassistant/#")
    time.sleep(1.0)
    assert [m.topic for m in late.messages if m.payload] == []
