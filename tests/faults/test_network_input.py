"""Hostile network input against a real Mosquitto: fuzzed commands (hypothesis), oversized
payloads, senders not on the allowlist; JSON objects are sent both raw (refused: unsigned)
and signed with a custodian's console key (through the handlers). Every message gets a
well-formed reply, none crashes a handler ("internal error"), a refused one changes nothing,
and the evidence stays intact."""

from __future__ import annotations

import json
import sqlite3
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from faults.harness import Recorder, check_invariants
from fixtures.consoles import add_console
from fixtures.mqtt_agent import mqtt_config, running, validate, wait_ledger

P = "evidence/test-station"
ALLOWED = "ops-console"
VERBS = ("tag", "rescan", "release", "priority", "interview_start", "interview_stop")
ARCHIVED = "SELECT COUNT(*) FROM recordings WHERE state = 'archived'"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
refs = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["../etc/passwd", "0" * 12, "a+b", "#", "%s%n", "'; DROP TABLE x;--"]),
    st.text(alphabet="0123456789abcdef", min_size=12, max_size=64),
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=80), st.integers()),
        "operator": st.one_of(st.text(max_size=80), st.none(), st.integers()),
        "reason": st.text(max_size=600),
        "recordings": st.one_of(st.lists(refs, max_size=5), refs, json_values),
        "priority": st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5)),
        "fields": st.one_of(st.dictionaries(st.text(max_size=12), json_values), json_values),
        "session": json_values,
    },
)
payloads = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
)
verbs = st.one_of(st.sampled_from(VERBS), st.text(string.ascii_lowercase + "_", min_size=1))
# Control characters in a user property are malformed MQTT: the broker drops such a sender
# before anything reaches the agent, so the fuzz sends only what a broker passes on.
mqtt_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)
clients = st.one_of(st.none(), st.just(ALLOWED), mqtt_text, st.just(ALLOWED + " "))


def _snapshot(db) -> dict:  # type: ignore[no-untyped-def]
    """What a refused command must not change (custody, replies and outbox may grow)."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        rows = conn.execute(
            "SELECT id, state, priority, sha256, spool_path, metadata_version FROM recordings"
            " ORDER BY id"
        ).fetchall()
        meta = conn.execute("SELECT COUNT(*) FROM metadata_versions").fetchone()[0]
        return {"recordings": rows, "metadata_versions": meta}
    finally:
        conn.close()


class Console:
    def __init__(self, sub) -> None:  # type: ignore[no-untyped-def]
        self.sub = sub

    def send(self, verb: str, payload: bytes, client: str | None) -> dict:
        props = Properties(PacketTypes.PUBLISH)
        if client is not None:
            props.UserProperty = ("client", client)
        topic = f"{P}/reply/{verb}"
        before = len(self.sub.on(topic))
        self.sub.publish(f"{P}/cmd/{verb}", payload, properties=props)
        self.sub.wait_until(lambda: len(self.sub.on(topic)) > before, timeout=15)
        reply = self.sub.on(topic)[before].json()
        validate("command-reply", reply)
        return reply


def test_fuzzed_commands_oversized_payloads_and_strangers(
    make_station, broker, subscribe, tmp_path
):
    st_ = make_station(mqtt_config(broker.url, allowed_clients=[ALLOWED]))
    key = add_console(st_, "B001", "custodian")
    rec = Recorder(st_.mount_root / "NET0001", "NET0001")
    import random

    rec.record(random.Random(5), 3, lo=20_000, hi=20_000)
    db = st_.data_dir / "ledger.sqlite3"
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/availability")
    console = Console(sub)
    with running(st_) as daemon:
        sub.wait_for(lambda m: m.payload == b"online")
        wait_ledger(st_, ARCHIVED, 3)  # the pipeline is done: any change is a command's
        seen: list[tuple[str, dict]] = []

        @settings(
            max_examples=80,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(verb=verbs, payload=payloads, client=clients, sign=st.booleans())
        def fuzz(verb: str, payload: bytes, client: str | None, sign: bool) -> None:
            try:
                args = json.loads(payload) if sign else None
            except ValueError:
                args = None
            if isinstance(args, dict):
                payload = key.sign(verb, args).encode()
            before = _snapshot(db)
            reply = console.send(verb, payload, client)
            seen.append((verb, reply))
            assert "internal error" not in (reply.get("error") or ""), (verb, payload, reply)
            if client != ALLOWED:
                assert not reply["ok"] and "allowed_clients" in reply["error"]
            if not reply["ok"]:
                assert reply["error"] and _snapshot(db) == before, (verb, payload, reply)

        fuzz()
        # Above MAX_PAYLOAD: refused, nothing parsed.
        reply = console.send("tag", b"{" + b" " * (40 * 1024) + b"}", ALLOWED)
        assert not reply["ok"] and "payload too large" in reply["error"]
        # Above the Maximum Packet Size the station sent in CONNECT: the broker drops it
        # before it reaches the station (nothing to parse, reply to or record).
        for size in (300 * 1024, 4 << 20):
            sub.publish(f"{P}/cmd/tag", b"{" + b" " * size + b"}")
        assert console.send("rescan", key.sign("rescan", {}).encode(), ALLOWED)["ok"]
        assert len(sub.on(f"{P}/reply/tag")) == len([v for v, _ in seen if v == "tag"]) + 1
        assert all(t.is_alive() for t in daemon.threads if t.name.startswith("mqtt"))
        rescan = key.sign("rescan", {}).encode()
        assert console.send("rescan", rescan, ALLOWED)["ok"]  # still answering
    assert len(seen) >= 50
    problems = check_invariants(st_.config_path, [rec], final=True, release_after="archived")
    assert not problems, "\n".join(problems)
