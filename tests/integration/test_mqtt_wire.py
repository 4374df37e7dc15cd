"""One name per field, one clock on the wire (issue 14, item 3), against a real Mosquitto.

Everything the station publishes — state, recorders, compliance, custody, events, replies —
carries `schema`, has no alias fields, has every time in `station.timezone` with its offset
(the default, Asia/Shanghai: `+08:00`), every event names its station, and officers' names
stay off MQTT unless `mqtt.publish_names = true`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate, wait_ledger

P = "evidence/test-station"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
ALIASES = {"pending_files", "pending_bytes", "estimated_drain_seconds"}
SCHEMAS = {
    "state": "station-state",
    "compliance": "compliance",
    "custody": "custody",
    "events": "event",
}


def _walk(value: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """(path, key, value) of every field in a JSON value."""
    out: list[tuple[str, str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((f"{path}.{k}", k, v))
            out += _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _walk(v, f"{path}[{i}]")
    return out


def _schema_of(topic: str) -> str | None:
    tail = topic.removeprefix(f"{P}/")
    if tail.startswith("recorders/"):
        return "recorder-state"
    if tail.startswith("reply/"):
        return "command-reply"
    return SCHEMAS.get(tail)


@pytest.mark.parametrize("publish_names", [False, True])
def test_every_payload_versioned_unaliased_on_the_station_clock(
    make_station, broker, subscribe, tmp_path: Path, publish_names: bool
) -> None:
    station = make_station(mqtt_config(broker.url, publish_names=publish_names))
    sub = subscribe(broker, f"{P}/#")
    with running(station):
        sub.wait_for(lambda m: m.topic == f"{P}/availability" and m.payload == b"online")
        drop_volume(station, tmp_path, "ZFY0001", 2)
        wait_ledger(station, SPOOLED, 2)
        sub.wait_until(
            lambda: sum(e["type"] == "ingest.completed" for e in sub.events(f"{P}/events")) == 2
        )
        sub.wait_for(lambda m: m.topic == f"{P}/recorders/ZFY0001/state" and m.json()["docked"])
        sub.wait_for(lambda m: m.topic == f"{P}/custody" and m.json()["checkpoint"])
        sub.publish(f"{P}/cmd/rescan", b"{}")
        sub.wait_for(lambda m: m.topic == f"{P}/reply/rescan")
        sub.latest(f"{P}/compliance")
    checked = 0
    names = []
    for m in sub.messages:
        name = _schema_of(m.topic)
        if name is None or not m.payload:
            continue
        payload = m.json()
        validate(name, payload)
        assert payload["schema"] == 2, m.topic
        fields = _walk(payload)
        assert not ALIASES & {k for _p, k, _v in fields}, (m.topic, payload)
        for where, _k, value in fields:
            signed = where.startswith(".checkpoint")  # as signed, never re-formatted
            if isinstance(value, str) and TIME.match(value) and not signed:
                assert value.endswith("+08:00"), (m.topic, where, value)
                checked += 1
        if name == "event":
            assert payload["station"] == "test-station"
        names += [v for _p, k, v in fields if k == "officer_name"]
    assert checked > 10  # `at` of every payload, last_docked, event times, ...
    if publish_names:
        assert names and set(names) == {"张三"}
    else:
        assert names == []
        assert all("张三" not in m.payload.decode() for m in sub.messages)
