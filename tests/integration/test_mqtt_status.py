"""MQTT status plane against a real Mosquitto: availability, retained state, events, schemas,
Home Assistant discovery, ingest progress rate."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate, wait_ledger

P = "evidence/test-station"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"


def test_subscriber_sees_online_state_recorder_and_ingest_events(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    station = make_station(mqtt_config(broker.url))
    sub = subscribe(broker, "#")
    with running(station):
        sub.wait_for(lambda m: m.topic == f"{P}/availability" and m.payload == b"online")
        drop_volume(station, tmp_path, "ZFY0001", 3)
        wait_ledger(station, SPOOLED, 3)
        sub.wait_until(
            lambda: sum(e["type"] == "ingest.completed" for e in sub.events(f"{P}/events")) == 3
        )
        recorder = sub.wait_for(
            lambda m: m.topic == f"{P}/recorders/ZFY0001/state" and m.json()["docked"]
        ).json()
        sub.wait_until(
            lambda: any(json.loads(m.payload)["queue"]["total"] == 0 for m in sub.on(f"{P}/state"))
        )
        state = sub.latest(f"{P}/state")
        custody = sub.wait_for(
            lambda m: m.topic == f"{P}/custody" and (m.json()["checkpoint"] or {}) != {}
        ).json()
        compliance = sub.latest(f"{P}/compliance")

    # What a dashboard relies on, and every payload against its published schema.
    assert recorder["unit"] == "UNIT01" and recorder["officer"] == "100001"
    assert state["station"] == "test-station" and state["role"] == "dock"
    assert custody["key_fingerprint"].startswith("sha256:")
    validate("station-state", state)
    validate("recorder-state", recorder)
    validate("custody", custody)
    validate("compliance", compliance)
    for m in sub.on(f"{P}/state"):
        validate("station-state", m.json())
    for m in sub.on(f"{P}/recorders/ZFY0001/state"):
        validate("recorder-state", m.json())
    events = sub.events(f"{P}/events")
    for e in events:
        validate("event", e)
    completed = [e for e in events if e["type"] == "ingest.completed"]
    assert len({e["recording"] for e in completed}) == 3
    assert all(e["state"] == "spooled" and len(e["sha256"]) == 64 for e in completed)
    assert len({e["id"] for e in events}) == len(events)
    # Clean shutdown says offline itself (no LWT needed).
    assert sub.on(f"{P}/availability")[-1].payload == b"offline"


def test_retained_state_reaches_a_late_subscriber(make_station, broker, subscribe) -> None:
    station = make_station(mqtt_config(broker.url))
    with running(station):
        early = subscribe(broker, f"{P}/#")
        early.wait_for(lambda m: m.topic == f"{P}/custody")
        late = subscribe(broker, f"{P}/#")
        got = late.wait_for(lambda m: m.topic == f"{P}/state")
        assert got.retain
        assert late.wait_for(lambda m: m.topic == f"{P}/availability").payload == b"online"


def test_home_assistant_discovery_resent_on_birth(make_station, broker, subscribe) -> None:
    station = make_station(mqtt_config(broker.url))
    sub = subscribe(broker, "homeassistant/#")
    with running(station):
        sub.wait_until(lambda: len(_configs(sub)) >= 1)
        first = len(_configs(sub))
        for m in _configs(sub):
            validate("ha-discovery", m.json())
        [station] = [m.json() for m in _configs(sub) if m.topic.endswith("/station/config")]
        names = set(station["components"])
        assert {"queue_depth", "oldest_open_deadline", "overdue_count", "spool_free"} <= names
        sub.publish("homeassistant/status", "online")
        sub.wait_until(lambda: len(_configs(sub)) >= first + 1)


def _configs(sub):  # type: ignore[no-untyped-def]
    return [m for m in sub.messages if m.topic.endswith("/config")]


def test_progress_at_most_once_per_second_per_recorder(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    # Small chunks and a slow progress hook stretch each copy over several updates.
    station = make_station("chunk_bytes = 65536\n" + mqtt_config(broker.url, debounce_seconds=0.0))
    sub = subscribe(broker, f"{P}/recorders/#")
    with running(station, progress=lambda *a: time.sleep(0.3)):
        drop_volume(station, tmp_path, "ZFY0002", 3, seconds=12.0, width=640, height=480)
        wait_ledger(station, SPOOLED, 3, timeout=120)
        sub.wait_until(lambda: any(m.json()["progress"] for m in sub.messages))
    msgs = sub.on(f"{P}/recorders/ZFY0002/state")
    with_progress = [m.json()["progress"] for m in msgs if m.json()["progress"]]
    assert with_progress and all(0 <= p["percent"] <= 100 for p in with_progress)
    gaps = [b.received - a.received for a, b in zip(msgs, msgs[1:], strict=False)]
    # The last message may be the forced one at shutdown; every other one is rate-limited.
    assert all(g >= 0.9 for g in gaps[:-1]), gaps
