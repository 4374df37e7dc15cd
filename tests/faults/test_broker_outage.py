"""Broker outages under the kill harness: Mosquitto stops and starts at seeded moments while
the agent is SIGKILLed (also at the outbox's crash points). No evidence is lost or wrongly
marked, and once the broker stays up every event the station emitted reaches a dashboard."""

from __future__ import annotations

import random

from faults.harness import KillRunner, Recorder, check_invariants, seed_from_env
from fixtures.mqtt_agent import audit_outbox, emitted, ledger_count, mqtt_config

P = "evidence/test-station"
OUTBOX_POINTS = ("outbox.after_publish", "outbox.before_delete")


def test_kills_and_broker_outages_lose_neither_evidence_nor_events(
    make_station, make_broker, subscribe
):
    seed = seed_from_env()
    print(f"broker outage seed {seed} (replay: EVIDENCE_FAULT_SEED={seed})")
    broker = make_broker(persistence=True)
    st = make_station(
        'release_after = "archived"\nchunk_bytes = 65536\n[archive]\noff_station = true\n'
        + mqtt_config(broker.url)
    )
    audit_outbox(st)
    sub = subscribe(broker, f"{P}/events", client_id="dashboard", persistent=True)
    rng = random.Random(seed)
    recorders = [Recorder(st.mount_root / f"REC{i}", f"BRK{i:04d}") for i in range(2)]
    for rec in recorders:
        rec.record(rng, 2)

    def weather(r: random.Random) -> str | None:
        if broker.proc is not None and r.random() < 0.3:
            broker.stop()
            return "broker down"
        if broker.proc is None and r.random() < 0.5:
            broker.start()
            return "broker up"
        return None

    runner = KillRunner(
        st.config_path, recorders, seed, extra_points=OUTBOX_POINTS, before_round=weather
    )
    runner.run(20)
    print(runner.summary())
    if broker.proc is None:
        broker.start()
    runner.settle(until=lambda: ledger_count(st, "SELECT COUNT(*) FROM outbox") == 0)
    problems = runner.violations + check_invariants(st.config_path, recorders, final=True)
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)

    want = {e[1] for e in emitted(st)}
    sub.wait_until(lambda: want <= {e["id"] for e in sub.events(f"{P}/events")}, timeout=30)
    types = {e[2] for e in emitted(st)}
    assert {"ingest.completed", "archive.completed", "recording.released"} <= types
