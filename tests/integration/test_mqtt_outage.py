"""Events survive a broker outage: the outbox keeps them, the agent catches up, in order."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fixtures.mqtt_agent import (
    audit_outbox,
    drop_volume,
    emitted,
    ledger_count,
    mqtt_config,
    running,
    validate,
    wait_ledger,
)

P = "evidence/test-station"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"
ARCHIVED = "SELECT COUNT(*) FROM recordings WHERE state = 'archived'"
OUTBOX = "SELECT COUNT(*) FROM outbox"


def _first_seen_order(events: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for e in events:
        seen.setdefault(e["id"], None)
    return list(seen)


def test_broker_stopped_during_20_clip_ingest_every_event_once_after_dedupe(
    make_broker, make_station, subscribe, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="agent.mqtt")
    broker = make_broker(persistence=True)
    station = make_station(mqtt_config(broker.url))
    audit_outbox(station)
    sub = subscribe(broker, f"{P}/events", client_id="dashboard", persistent=True)
    # A slow copy keeps the ingest running while the broker goes away.
    with running(station, progress=lambda *a: time.sleep(0.1)):
        drop_volume(station, tmp_path, "ZFY0001", 20)
        sub.wait_for(lambda m: m.json()["type"] == "ingest.completed")
        broker.stop()  # clean stop: the broker saves its sessions and queues
        assert ledger_count(station, SPOOLED) < 20, "ingest finished before the outage"
        wait_ledger(station, ARCHIVED, 20)  # ingest and archive carry on without a broker
        assert ledger_count(station, OUTBOX) > 0
        time.sleep(2.5)  # several reconnect attempts while the broker is down
        broker.start()
        wait_ledger(station, OUTBOX, 0)
        want = [e[1] for e in emitted(station)]
        sub.wait_until(lambda: set(want) <= {e["id"] for e in sub.events(f"{P}/events")})

    events = sub.events(f"{P}/events")
    for e in events:
        validate("event", e)
    got = _first_seen_order(events)
    assert sorted(got) == sorted(want)  # every event, none invented
    assert got == want  # and in the order the station emitted them
    completed = {e["recording"] for e in events if e["type"] == "ingest.completed"}
    assert len(completed) == 20
    # One log line per connection state change, not one per retry.
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.mqtt.connection"]
    assert sum("unreachable" in line for line in lines) == 1, lines
    assert sum("lost" in line for line in lines) == 1, lines
    assert sum("MQTT: connected to" in line for line in lines) == 2, lines


def test_broker_down_at_start_agent_ingests_and_catches_up(
    make_broker, make_station, subscribe, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="agent.mqtt")
    broker = make_broker(persistence=True)
    sub = subscribe(broker, f"{P}/#", client_id="dashboard", persistent=True)
    broker.stop()
    station = make_station(mqtt_config(broker.url))
    with running(station):
        drop_volume(station, tmp_path, "ZFY0003", 3)
        wait_ledger(station, SPOOLED, 3)
        time.sleep(2.5)
        broker.start()
        sub.wait_until(
            lambda: sum(e["type"] == "ingest.completed" for e in _events(sub)) == 3, timeout=30
        )
        wait_ledger(station, OUTBOX, 0)
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.mqtt.connection"]
    assert sum("unreachable" in line for line in lines) == 1, lines


def _events(sub) -> list[dict]:  # type: ignore[no-untyped-def]
    return sub.events(f"{P}/events")
