"""A broker away for weeks: the outbox stays bounded, drops are counted and recorded in the
custody log, and integrity/deadline/archive.failed events are never dropped.

Reproduced first (the outbox grows past `mqtt.outbox_max_events` while Mosquitto is down),
then fixed by the housekeeping pass; once the broker is back every kept event is delivered.
"""

from __future__ import annotations

import json

from agent.daemon.main import Daemon
from agent.ledger import custody, events
from agent.retention.outbox import is_protected
from fixtures.mqtt_agent import mqtt_config

P = "evidence/test-station"
CAP = 1000


def _count(ctx, sql: str) -> int:
    return int(ctx.ledger.one(sql)[0])


def test_outbox_is_capped_during_a_long_outage_and_keeps_what_auditors_need(
    make_station, make_broker, subscribe
):
    broker = make_broker(persistence=True)
    st = make_station(
        mqtt_config(broker.url) + f"outbox_max_events = {CAP}\n"
        "[archive]\nhousekeep_seconds = 3600\n"
    )
    broker.stop()  # the outage: nothing can be delivered
    ctx = st.context()
    kinds = ["ingest.completed"] * 6 + ["deadline.missed", "integrity.violation", "archive.failed"]
    with ctx.ledger.tx() as conn:
        for i in range(1500):
            events.emit(conn, kinds[i % len(kinds)], n=i)
    protected = _count(ctx, "SELECT COUNT(*) FROM outbox WHERE type != 'ingest.completed'")
    # Reproduced: without the cap the outbox simply grows.
    assert _count(ctx, "SELECT COUNT(*) FROM outbox") == 1500 > CAP

    d = Daemon(ctx)  # its housekeeping pass enforces the cap (MQTT down: nothing delivered)
    d._housekeep_step()

    left = ctx.ledger.query("SELECT type, payload FROM outbox ORDER BY seq")
    assert len(left) == CAP
    assert sum(is_protected(r["type"]) for r in left) == protected  # none of those dropped
    n_left = [json.loads(r["payload"])["n"] for r in left if r["type"] == "ingest.completed"]
    assert min(n_left) > 0 and n_left == sorted(n_left)  # the oldest went first
    assert ctx.ledger.get_kv("outbox.dropped") == "500"
    drop = ctx.ledger.one("SELECT payload FROM custody WHERE type = 'outbox.dropped'")
    assert drop is not None
    body = json.loads(drop["payload"])
    assert body["count"] == 500 and body["types"] == {"ingest.completed": 500}
    checked, problems = custody.verify_chain(ctx.ledger.connect())
    assert checked > 0 and not problems
    counter = _count(ctx, "SELECT n FROM ledger_counters WHERE name = 'outbox'")
    assert counter == CAP

    status = json.loads(st.cli("status", "--json", check=True).stdout)
    assert status["open_work"]["outbox_dropped"] == 500
    assert status["open_work"]["outbox_pending"] == CAP

    # The broker is back: every kept event, protected ones included, reaches a dashboard.
    broker.start()
    sub = subscribe(broker, f"{P}/events", client_id="dashboard")
    d.start()
    try:
        sub.wait_until(lambda: len(sub.events(f"{P}/events")) >= CAP, timeout=60)
    finally:
        d.shutdown()
    got = sub.events(f"{P}/events")
    assert {e["type"] for e in got} >= {"deadline.missed", "integrity.violation", "archive.failed"}
    ctx.close()
