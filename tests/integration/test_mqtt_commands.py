"""Commands over MQTT against a real Mosquitto: results, custody records, bad input.

Commands are signed envelopes (a console key of operator `op7`, custodian, in the register);
raw bytes are sent as they are, so malformed envelopes are tested too."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fixtures.consoles import ConsoleKey, add_console
from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate, wait_ledger

P = "evidence/test-station"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"


def _db(station) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(station.data_dir / "ledger.sqlite3", timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


class Console:
    """An operator's console: signs a command, sends it, returns the reply (schema-checked).
    A dict is signed as the command's arguments (`id` goes into the signed body); bytes and
    text are sent as they are."""

    def __init__(self, sub, key: ConsoleKey) -> None:  # type: ignore[no-untyped-def]
        self.sub = sub
        self.key = key

    def send(self, verb: str, payload: object, client: str | None = None) -> dict:
        if isinstance(payload, dict):
            args = dict(payload)
            body: object = self.key.sign(verb, args, rid=args.pop("id", None))
        else:
            body = payload
        props = None
        if client is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = ("client", client)
        before = len(self.sub.on(f"{P}/reply/{verb}"))
        self.sub.publish(f"{P}/cmd/{verb}", body, properties=props)
        self.sub.wait_until(lambda: len(self.sub.on(f"{P}/reply/{verb}")) > before)
        reply = self.sub.on(f"{P}/reply/{verb}")[before].json()
        validate("command-reply", reply)
        return reply


@pytest.fixture
def docked(make_station, broker, subscribe, tmp_path: Path):  # type: ignore[no-untyped-def]
    station = make_station(mqtt_config(broker.url))
    key = add_console(station, "op7", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", "dash/#", f"{P}/availability", f"{P}/events")
    with running(station) as daemon:
        sub.wait_for(lambda m: m.payload == b"online")
        drop_volume(station, tmp_path, "ZFY0001", 2)
        wait_ledger(station, SPOOLED, 2)
        yield station, Console(sub, key), daemon


def test_priority_rescan_release_and_custody(docked) -> None:  # type: ignore[no-untyped-def]
    station, console, _ = docked
    with _db(station) as db:
        rid, sha = db.execute("SELECT id, sha256 FROM recordings ORDER BY id").fetchone()
    cmd = {"id": "req-1", "recordings": [sha[:12]], "priority": 50}
    reply = console.send("priority", cmd)
    assert reply["ok"] and reply["result"] == {"recordings": [rid], "priority": 50}
    assert reply["id"] == "req-1"
    # The same request id again (a console's retry, signed anew) is answered, not run twice;
    # the same id with other arguments is refused.
    again = console.send("priority", cmd)
    assert again["duplicate"] and again["result"] == reply["result"]
    other = console.send("priority", {**cmd, "priority": 7})
    assert not other["ok"] and "already used" in other["error"]
    assert console.send("rescan", {})["result"] == {"rescan": "requested"}
    released = console.send("release", {"recordings": [rid]})
    assert released["ok"]
    [item] = released["result"]["recordings"]
    assert item["recording"] == rid and item["released"] is False  # the gate decides
    with _db(station) as db:
        assert db.execute("SELECT priority FROM recordings WHERE id=?", (rid,)).fetchone()[0] == 50
        prio = db.execute(
            "SELECT actor, payload FROM custody WHERE type='recording.priority'"
        ).fetchall()
        cmds = [
            json.loads(r[0])
            for r in db.execute("SELECT payload FROM custody WHERE type='command.mqtt'")
        ]
    assert len(prio) == 1 and prio[0]["actor"] == "op7"
    assert json.loads(prio[0]["payload"])["origin"] == "mqtt"
    assert json.loads(prio[0]["payload"])["key"] == console.key.kid
    # The duplicate ran nothing: it is counted with the refusals, not recorded on its own.
    assert [c["verb"] for c in cmds] == ["priority", "rescan", "release"]
    assert all(c["via"] == "mqtt" and c["operator"] == "op7" for c in cmds)


def test_tag_over_mqtt(docked) -> None:  # type: ignore[no-untyped-def]
    station, console, _ = docked
    with _db(station) as db:
        rid = db.execute("SELECT id FROM recordings ORDER BY id").fetchone()[0]
    fields = {"case_number": "NJ-2026-0042", "proves": "现场检查"}
    reply = console.send("tag", {"recordings": [rid], "fields": fields, "reason": "case opened"})
    assert reply["ok"], reply
    [tagged] = reply["result"]["tagged"]
    assert tagged["recording_id"] == rid and tagged["version"] == 1
    status = json.loads(station.cli("status", "--json", check=True).stdout)
    [row] = [r for r in status["recordings"] if r["id"] == rid]
    assert row["metadata"]["case_number"] == "NJ-2026-0042"
    assert row["metadata_version"] == 1
    with _db(station) as db:
        [(actor, payload)] = db.execute(
            "SELECT actor, payload FROM custody WHERE type='metadata.tagged'"
        ).fetchall()
    assert actor == "op7" and json.loads(payload)["origin"] == "mqtt"
    # Refused by the metadata rules: an error result naming the field, nothing written.
    bad = console.send("tag", {"recordings": [rid], "fields": {"colour": 1}})
    assert not bad["ok"] and "colour" in bad["error"]
    assert station.cli("verify", check=True).returncode == 0
    event = console.sub.wait_for(
        lambda m: m.topic == f"{P}/events" and m.json()["type"] == "recording.tagged"
    ).json()
    validate("event", event)
    assert event["recording"] == rid and event["origin"] == "mqtt"


def test_interview_commands_on_a_dock_station_are_refused(docked) -> None:  # type: ignore[no-untyped-def]
    _, console, _ = docked
    reply = console.send("interview_start", {"case_number": "NJ-1"})
    assert not reply["ok"] and 'station.role is "dock"' in reply["error"]


BAD = [
    ("priority", b"{not json", "not valid UTF-8 JSON"),
    ("priority", b"\xff\xfe", "not valid UTF-8 JSON"),
    ("priority", b"[1, 2]", "must be a JSON object"),
    ("priority", b'{"body": 1, "key": "x", "sig": "y"}', "must be strings"),
    ("priority", b'{"operator": "x", "recordings": ["0"], "priority": 1}', "unsigned"),
    ("erase", {}, "unknown command 'erase'"),
    ("priority", {"recordings": ["0" * 12], "priority": "high"}, "priority"),
    ("priority", {"recordings": ["a+b"], "priority": 1}, "'a+b'"),
    ("release", {"recordings": ["#"]}, "'#'"),
    ("release", {"recordings": ["../etc/passwd"]}, "'../etc/passwd'"),
    ("release", {"recordings": ["abcdef012345"]}, "no recording whose"),
    ("priority", {"recordings": ["0" * 12], "priority": 1, "z": 1}, "z:"),
    ("rescan", {"operator": "x"}, "is not you"),
    ("tag", {"recordings": [], "fields": {"a": 1}}, "recordings"),
]


def test_malformed_commands_get_errors_and_agent_keeps_running(docked) -> None:  # type: ignore[no-untyped-def]
    station, console, daemon = docked
    for verb, payload, problem in BAD:
        reply = console.send(verb, payload)
        assert reply["ok"] is False and problem in reply["error"], (payload, reply)
    assert all(t.is_alive() for t in daemon.threads if t.name.startswith("mqtt"))
    assert console.send("rescan", {})["ok"]  # still answering
    # A rejected command ran nothing: fixed and re-sent under the same id, it runs.
    with _db(station) as db:
        rid = db.execute("SELECT id FROM recordings ORDER BY id").fetchone()[0]
    cmd = {"id": "retry-1", "recordings": ["a+b"], "priority": 1}
    assert not console.send("priority", cmd)["ok"]
    fixed = console.send("priority", {**cmd, "recordings": [rid]})
    assert fixed["ok"] and "duplicate" not in fixed
    daemon.mqtt.commands.flush()  # what the daemon does every minute and at shutdown
    with _db(station) as db:
        n = db.execute("SELECT COUNT(*) FROM custody WHERE type='command.mqtt'").fetchone()[0]
        refused = [
            json.loads(r[0])
            for r in db.execute("SELECT payload FROM custody WHERE type='command.refused'")
        ]
    assert n == 2  # what ran is recorded one by one
    # The refusals: aggregated (at most one record a minute), none of them lost.
    assert len(refused) <= 2 and sum(r["refused"] for r in refused) == len(BAD) + 1


def test_mqtt5_response_topic_and_correlation_data(docked) -> None:  # type: ignore[no-untyped-def]
    _, console, _ = docked
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = f"{P}/reply/dash-7"
    props.CorrelationData = b"corr-42"
    console.sub.publish(f"{P}/cmd/rescan", console.key.sign("rescan", {}), properties=props)
    msg = console.sub.wait_for(lambda m: m.topic == f"{P}/reply/dash-7")
    assert msg.json()["ok"] and msg.properties.CorrelationData == b"corr-42"


def test_commands_refused_when_disabled(make_station, broker, subscribe) -> None:
    station = make_station(mqtt_config(broker.url, commands_enabled=False))
    key = add_console(station, "op7", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")
        reply = Console(sub, key).send("rescan", {})
    assert not reply["ok"] and "mqtt.commands_enabled" in reply["error"]


def test_allowed_clients_checked_against_user_property(make_station, broker, subscribe) -> None:
    station = make_station(mqtt_config(broker.url, allowed_clients=["ops-console"]))
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    console = Console(sub, add_console(station, "op7", "custodian"))
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")
        anonymous = console.send("rescan", {})
        intruder = console.send("rescan", {}, client="intruder")
        allowed = console.send("rescan", {}, client="ops-console")
    assert not anonymous["ok"] and "user property 'client'" in anonymous["error"]
    assert not intruder["ok"] and "'intruder' is not in mqtt.allowed_clients" in intruder["error"]
    assert allowed["ok"]
    with _db(station) as db:
        clients = [
            json.loads(r[0])["client"]
            for r in db.execute("SELECT payload FROM custody WHERE type='command.mqtt'")
        ]
        refused = [
            json.loads(r[0])["by_claimed_client"]
            for r in db.execute("SELECT payload FROM custody WHERE type='command.refused'")
        ]
    assert clients == ["ops-console"]
    assert sum(c.get("(none)", 0) for c in refused) == 1
    assert sum(c.get("intruder", 0) for c in refused) == 1


def test_unsigned_commands_only_with_the_documented_switch(make_station, broker, subscribe) -> None:
    """`mqtt.unsigned_commands = true` keeps the v0.1 format (operator self-declared)."""
    station = make_station(mqtt_config(broker.url, unsigned_commands=True))
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    console = Console(sub, add_console(station, "op7", "custodian"))
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")
        plain = console.send("rescan", json.dumps({"operator": "legacy-1"}).encode())
        signed = console.send("rescan", {})
    assert plain["ok"] and signed["ok"]
    with _db(station) as db:
        actors = [r[0] for r in db.execute("SELECT actor FROM custody WHERE type='command.mqtt'")]
    assert actors == ["legacy-1", "op7"]
