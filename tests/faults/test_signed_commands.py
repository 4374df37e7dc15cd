"""Forged and replayed commands against a real Mosquitto (issue 14, item 1, signed commands).

Reproduced as an attacker on the broker would: before signed commands, any client could send
`{"operator": "<anyone>", ...}` and the station acted with that operator as the custody actor;
a captured command could be published again. Now every command is an envelope signed with a
console key from the operator register, and each forgery below is refused, changes nothing,
and all of them together leave one aggregated `command.refused` custody record.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fixtures.consoles import add_console, revoke, stale
from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate, wait_ledger
from fixtures.station import ROOT, ledger_query

P = "evidence/test-station"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"


def _send(sub, verb: str, payload: str | bytes) -> dict:  # type: ignore[no-untyped-def]
    topic = f"{P}/reply/{verb}"
    before = len(sub.on(topic))
    sub.publish(f"{P}/cmd/{verb}", payload)
    sub.wait_until(lambda: len(sub.on(topic)) > before)
    reply = sub.on(topic)[before].json()
    validate("command-reply", reply)
    return reply


def test_forged_stale_and_replayed_commands_are_refused_and_cost_one_record(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    station = make_station(mqtt_config(broker.url))
    custodian = add_console(station, "B001", "custodian")
    officer = add_console(station, "310001", "officer")
    lost = add_console(station, "B002", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    with running(station) as daemon:
        sub.wait_for(lambda m: m.payload == b"online")
        drop_volume(station, tmp_path, "ZFY0001", 1)
        wait_ledger(station, SPOOLED, 1)
        [rec] = ledger_query(station, "SELECT id, priority FROM recordings")
        # A refusal opens the minute (the first after a quiet minute is recorded at once);
        # everything refused in the rest of that minute goes into one record.
        assert not _send(sub, "rescan", b"{}")["ok"]
        daemon.mqtt.commands.flush()
        custody_before = ledger_query(station, "SELECT MAX(seq) FROM custody")[0][0]
        args = {"recordings": [rec["id"]], "priority": 42}
        good = custodian.sign("priority", args)
        revoke(station, lost)
        stranger = Ed25519PrivateKey.generate()
        body = custodian.body("priority", args)
        forged = {
            "unsigned (v0.1 format)": json.dumps({"operator": "B001", **args}),
            "signed by another key": custodian.seal(body, signer=stranger),
            "body changed after signing": custodian.seal(body).replace("42", "43"),
            "other station": custodian.sign("priority", args, station="dock-99"),
            "verb of another topic": custodian.sign("rescan", {}),
            "stale": custodian.sign("priority", args, at=stale(3 * 24 * 60)),
            "from the future": custodian.sign("priority", args, at=stale(-3 * 24 * 60)),
            "revoked key": lost.sign("priority", args),
            "officer releases": officer.sign("release", {"recordings": [rec["id"]]}),
        }
        replies = {what: _send(sub, verb_of(what), cmd) for what, cmd in forged.items()}
        # The genuine command runs once; the same bytes again are a replay.
        first = _send(sub, "priority", good)
        replay = _send(sub, "priority", good)
        daemon.mqtt.commands.flush()  # what the daemon does every minute and at shutdown
    for what, reply in replies.items():
        assert reply["ok"] is False and reply["error"], what
    assert "unsigned commands are refused" in replies["unsigned (v0.1 format)"]["error"]
    assert "bad signature" in replies["signed by another key"]["error"]
    assert "bad signature" in replies["body changed after signing"]["error"]
    assert "not this station" in replies["other station"]["error"]
    assert "not this topic's verb" in replies["verb of another topic"]["error"]
    assert "the window is" in replies["stale"]["error"]
    assert "the window is" in replies["from the future"]["error"]
    assert "unknown or revoked console key" in replies["revoked key"]["error"]
    assert "may not release: needs role custodian" in replies["officer releases"]["error"]
    assert first["ok"] and first["result"]["priority"] == 42
    assert replay["ok"] is False and "replayed" in replay["error"]
    # The one genuine command, its grant and its change; the refusals in one record.
    new = ledger_query(
        station,
        "SELECT type, actor, payload FROM custody WHERE (type LIKE 'command.%' OR type LIKE"
        f" 'access.%' OR type = 'recording.priority') AND seq > {custody_before}",
    )
    types = sorted(r["type"] for r in new)
    assert types == sorted(
        ["access.granted", "recording.priority", "command.mqtt", "command.refused"]
    ), types
    [refused] = [json.loads(r["payload"]) for r in new if r["type"] == "command.refused"]
    assert refused["refused"] == len(forged) + 1 and refused["dropped_over_cap"] == 0
    assert custodian.kid in refused["by_claimed_client"]
    [ran] = [r for r in new if r["type"] == "command.mqtt"]
    assert ran["actor"] == "B001"
    payload = json.loads(ran["payload"])
    assert payload["via"] == "mqtt" and payload["key"] == custodian.kid
    [granted] = [json.loads(r["payload"]) for r in new if r["type"] == "access.granted"]
    assert granted["via"] == "mqtt" and granted["operator"] == "B001"
    assert ledger_query(station, "SELECT priority FROM recordings")[0][0] == 42
    assert station.cli("verify", check=True).returncode == 0


def verb_of(what: str) -> str:
    return {"verb of another topic": "priority", "officer releases": "release"}.get(
        what, "priority"
    )


def test_nonces_survive_a_restart_and_are_pruned(make_station, broker, subscribe) -> None:
    station = make_station(
        mqtt_config(broker.url, command_window_seconds=20, command_window_unsynced_seconds=20)
    )
    console = add_console(station, "B001", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    cmd = console.sign("rescan", {})
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")
        assert _send(sub, "rescan", cmd)["ok"]
    assert ledger_query(station, "SELECT COUNT(*) FROM mqtt_nonces")[0][0] == 1
    online = len([m for m in sub.on(f"{P}/availability") if m.payload == b"online"])
    with running(station):
        sub.wait_until(
            lambda: len([m for m in sub.on(f"{P}/availability") if m.payload == b"online"]) > online
        )
        again = _send(sub, "rescan", cmd)  # captured before the restart, sent after it
        assert again["ok"] is False and "replayed" in again["error"]
        # An old nonce is pruned once its command is outside the window for good.
        conn = sqlite3.connect(station.data_dir / "ledger.sqlite3", timeout=30)
        with conn:
            conn.execute("UPDATE mqtt_nonces SET expires = expires - 3600")
        conn.close()
        assert _send(sub, "rescan", console.sign("rescan", {}))["ok"]
    assert ledger_query(station, "SELECT COUNT(*) FROM mqtt_nonces")[0][0] == 1


def test_keys_console_new_and_send_from_a_shell(make_station, broker, subscribe, tmp_path):
    station = make_station(mqtt_config(broker.url))
    made = subprocess.run(
        [sys.executable, "-m", "agent", "keys", "console-new", "--out", str(tmp_path / "k")],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    kid = made.stdout.strip()
    assert (
        kid.startswith("ed25519:") and (tmp_path / "k" / "console.key").stat().st_mode & 0o77 == 0
    )
    register = station.dir / "operators.csv"
    text = register.read_text(encoding="utf-8").replace("active\n", "active,console_keys\n", 1)
    text = text.rstrip("\n") + ",\nB001,b001,王五,custodian,JZ-B001,1," + kid + "\n"
    register.write_text(text, encoding="utf-8")
    sub = subscribe(broker, f"{P}/availability")
    key = str(tmp_path / "k" / "console.key")
    with running(station):
        sub.wait_for(lambda m: m.payload == b"online")
        ok = station.cli("send", "rescan", "{}", "--key", key, "--id", "shell-1")
        refused = station.cli("send", "release", '{"recordings": ["abcdef012345"]}', "--key", key)
    assert ok.returncode == 0, ok.stderr
    reply = json.loads(ok.stdout)
    assert reply["ok"] and reply["id"] == "shell-1" and reply["result"] == {"rescan": "requested"}
    assert refused.returncode == 1 and "no recording whose" in json.loads(refused.stdout)["error"]
    [ran] = ledger_query(station, "SELECT actor, payload FROM custody WHERE type = 'command.mqtt'")
    assert ran["actor"] == "B001" and json.loads(ran["payload"])["key"] == kid


def test_one_verified_key_is_rate_limited(make_station, broker, subscribe) -> None:
    station = make_station(mqtt_config(broker.url))
    console = add_console(station, "B001", "custodian")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    with running(station) as daemon:
        sub.wait_for(lambda m: m.payload == b"online")
        for _ in range(90):  # under the global cap's burst (100), over one key's (60)
            sub.client.publish(f"{P}/cmd/rescan", console.sign("rescan", {}), qos=1)
        sub.wait_until(lambda: len(sub.on(f"{P}/reply/rescan")) == 90, timeout=60)
        daemon.mqtt.commands.flush()
    replies = [m.json() for m in sub.on(f"{P}/reply/rescan")]
    slow = [r for r in replies if not r["ok"]]
    assert 1 <= len(slow) <= 30 and all("slow down" in r["error"] for r in slow)
    ran = ledger_query(station, "SELECT COUNT(*) FROM custody WHERE type = 'command.mqtt'")[0][0]
    assert ran == 90 - len(slow)
    refused = ledger_query(station, "SELECT payload FROM custody WHERE type = 'command.refused'")
    assert sum(json.loads(r[0])["refused"] for r in refused) == len(slow)
