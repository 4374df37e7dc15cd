"""Commands that must cost nothing, against a real Mosquitto (issue 14, items 1 and 2).

Reproduced as an attacker on the broker would: a retained command waiting for the station
(it used to run again on every restart), a live publish with retain=1, a flood of refused
commands under many claimed sender ids (it used to add one fsync'd custody row each), deeply
nested JSON (it used to end in "internal error"), and a response topic pointing at the
station's own `custody` topic (the reply used to be published there).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fixtures.consoles import add_console
from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate, wait_ledger
from fixtures.station import ledger_query

P = "evidence/test-station"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"


def _publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _ledger_bytes(station) -> int:  # type: ignore[no-untyped-def]
    return sum(p.stat().st_size for p in station.data_dir.glob("ledger.sqlite3*") if p.is_file())


def test_retained_command_never_runs_across_restarts(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    station = make_station(mqtt_config(broker.url))
    console = add_console(station, "op7", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")
        drop_volume(station, tmp_path, "ZFY0001", 1)
        wait_ledger(station, SPOOLED, 1)
    [rec] = ledger_query(station, "SELECT id, priority FROM recordings")
    # An attacker (or a careless console) leaves a retained command on the broker.
    pub = _publisher(broker.port)
    # Signed, and with a window wide enough that only the retain rule can refuse it.
    cmd = console.sign("priority", {"recordings": [rec["id"]], "priority": 99})
    pub.publish(f"{P}/cmd/priority", cmd, qos=1, retain=True).wait_for_publish(10)
    for _ in range(3):
        online = len([m for m in sub.on(f"{P}/availability") if m.payload == b"online"])
        with running(station):
            sub.wait_until(
                lambda n=online: (
                    len([m for m in sub.on(f"{P}/availability") if m.payload == b"online"]) > n
                )
            )
            time.sleep(1.5)  # time for a delivered command to run and be answered
    pub.loop_stop()
    pub.disconnect()
    assert ledger_query(station, "SELECT priority FROM recordings")[0][0] == rec["priority"]
    assert sub.on(f"{P}/reply/priority") == []  # never delivered, so never answered
    assert ledger_query(station, "SELECT * FROM custody WHERE type LIKE 'command.%'") == []


def test_live_retained_command_is_refused_with_an_error(make_station, broker, subscribe) -> None:
    station = make_station(mqtt_config(broker.url))
    console = add_console(station, "op7", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")
        pub = _publisher(broker.port)
        signed = console.sign("rescan", {})
        pub.publish(f"{P}/cmd/rescan", signed, qos=1, retain=True).wait_for_publish(10)
        reply = sub.wait_for(lambda m: m.topic == f"{P}/reply/rescan").json()
        # Clearing it as the docs say is a retained empty publish: ignored, not answered.
        pub.publish(f"{P}/cmd/rescan", b"", qos=1, retain=True).wait_for_publish(10)
        sub.publish(f"{P}/cmd/rescan", signed)  # the same command, live: it runs
        sub.wait_until(lambda: len(sub.on(f"{P}/reply/rescan")) >= 2)
        time.sleep(0.5)
        pub.loop_stop()
        pub.disconnect()
    validate("command-reply", reply)
    assert reply["ok"] is False and "retained commands are refused" in reply["error"]
    assert "mosquitto_pub" in reply["error"] and " -r -n" in reply["error"]
    replies = [m.json() for m in sub.on(f"{P}/reply/rescan")]
    assert [r["ok"] for r in replies] == [False, True]
    [refused] = ledger_query(station, "SELECT payload FROM custody WHERE type = 'command.refused'")
    assert json.loads(refused[0])["refused"] == 1


def test_flood_under_many_claimed_ids_costs_under_a_megabyte(
    make_station, broker, subscribe
) -> None:
    station = make_station(mqtt_config(broker.url))
    console = add_console(station, "op7", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    with running(station) as daemon:
        sub.wait_for(lambda m: m.payload == b"online")
        time.sleep(1.0)  # let start-up writes settle
        before = _ledger_bytes(station)
        pub = _publisher(broker.port)
        junk = b'{"operator": "x", "recordings": ["' + b"z" * 20_000 + b'"], "priority": 1}'
        for i in range(1000):
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = ("client", f"claimed-{i:04d}")
            pub.publish(f"{P}/cmd/priority", junk, qos=1, properties=props)
        time.sleep(3.0)
        pub.loop_stop()
        pub.disconnect()
        assert all(t.is_alive() for t in daemon.threads if t.name.startswith("mqtt"))
        sub.publish(f"{P}/cmd/rescan", console.sign("rescan", {}))  # still answering
        sub.wait_for(lambda m: m.topic == f"{P}/reply/rescan" and m.json()["ok"], timeout=30)
    grown = _ledger_bytes(station) - before
    assert grown < 1_000_000, f"the ledger grew by {grown} bytes"
    records = [
        json.loads(r[0])
        for r in ledger_query(station, "SELECT payload FROM custody WHERE type = 'command.refused'")
    ]
    assert 1 <= len(records) <= 2  # the first refusal promptly, the rest in one record
    assert sum(r["refused"] + r["dropped_over_cap"] for r in records) == 1000
    for r in records:
        assert len(r["by_claimed_client"]) <= 101 and len(r["samples"]) <= 20
        assert "zzzz" not in json.dumps(r)  # hashes and lengths, never the payload
    assert sum(sum(r["by_claimed_client"].values()) for r in records) == 1000
    assert (
        ledger_query(station, "SELECT COUNT(*) FROM custody WHERE type = 'command.mqtt'")[0][0] == 1
    )


def test_nested_json_and_foreign_response_topic(make_station, broker, subscribe) -> None:
    station = make_station(mqtt_config(broker.url))
    console = add_console(station, "op7", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability", f"{P}/custody", "elsewhere/#")
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")
        custody_before = len(sub.on(f"{P}/custody"))
        for depth in (9, 15_000):  # over the cap; over Python's recursion limit
            nested = b'{"operator": "x", "fields": ' + b"[" * depth + b"]" * depth + b"}"
            sub.publish(f"{P}/cmd/tag", nested)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = f"{P}/custody"
        sub.publish(f"{P}/cmd/rescan", console.sign("rescan", {}), properties=props)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "elsewhere/x"
        sub.publish(f"{P}/cmd/rescan", console.sign("rescan", {}), properties=props)
        own = Properties(PacketTypes.PUBLISH)
        own.ResponseTopic = f"{P}/reply/console-7"
        own.CorrelationData = b"c7"
        sub.publish(f"{P}/cmd/rescan", console.sign("rescan", {}), properties=own)
        mine = sub.wait_for(lambda m: m.topic == f"{P}/reply/console-7")
        sub.wait_until(lambda: len(sub.on(f"{P}/reply/rescan")) >= 3)
    tags = [m.json() for m in sub.on(f"{P}/reply/tag")]
    assert len(tags) == 2
    for reply in tags:
        validate("command-reply", reply)
        assert reply["ok"] is False and "nests JSON deeper than" in reply["error"]
    assert mine.properties.CorrelationData == b"c7" and mine.json()["ok"]
    assert sub.on("elsewhere/x") == []
    assert all("verb" not in m.json() for m in sub.on(f"{P}/custody")[custody_before:])
