"""kill -9 of the agent process: the LWT says offline, and no event in the outbox is lost."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fixtures.mqtt_agent import (
    audit_outbox,
    drop_volume,
    emitted,
    ledger_count,
    mqtt_config,
    wait_ledger,
)

P = "evidence/test-station"
SPOOLED = "SELECT COUNT(*) FROM recordings WHERE state IN ('spooled', 'archived')"
OUTBOX = "SELECT COUNT(*) FROM outbox"


@contextmanager
def agent(station, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:  # type: ignore[no-untyped-def]
    proc = station.popen("run", env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.communicate()


def test_kill9_subscribers_see_offline_through_the_lwt(make_station, broker, subscribe) -> None:
    station = make_station(mqtt_config(broker.url))
    sub = subscribe(broker, f"{P}/availability")
    with agent(station) as proc:
        sub.wait_for(lambda m: m.payload == b"online", timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        sub.wait_for(lambda m: m.payload == b"offline", timeout=10)
    late = subscribe(broker, f"{P}/availability")
    assert late.wait_for(lambda m: True).payload == b"offline"  # retained for newcomers


def test_kill9_with_undelivered_outbox_then_restart_delivers(
    make_broker, make_station, subscribe, tmp_path: Path
) -> None:
    broker = make_broker()
    broker.stop()  # down: events can only pile up in the outbox
    station = make_station(mqtt_config(broker.url))
    audit_outbox(station)
    with agent(station) as proc:
        drop_volume(station, tmp_path, "ZFY0001", 4)
        wait_ledger(station, SPOOLED, 4)
        proc.kill()
    pending = ledger_count(station, OUTBOX)
    assert pending >= 9  # docked + started/completed per clip, at least

    broker.start()
    sub = subscribe(broker, f"{P}/events")
    with agent(station):
        wait_ledger(station, OUTBOX, 0)
        want = {e[1] for e in emitted(station)}
        sub.wait_until(lambda: want <= {e["id"] for e in sub.events(f"{P}/events")})
    types = [e["type"] for e in sub.events(f"{P}/events")]
    assert types.count("ingest.completed") >= 4


def test_kill_in_the_outbox_path_loses_nothing(
    make_station, broker, subscribe, tmp_path: Path
) -> None:
    """Killed right after publishing an event (before its PUBACK is handled) and, on the next
    run, between a PUBACK and the row's deletion: every event still arrives."""
    station = make_station(mqtt_config(broker.url))
    audit_outbox(station)
    sub = subscribe(broker, f"{P}/events")
    with agent(station, {"EVIDENCE_AGENT_CRASHPOINT": "outbox.after_publish:3"}) as proc:
        drop_volume(station, tmp_path, "ZFY0001", 3)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    assert ledger_count(station, OUTBOX) > 0
    with agent(station, {"EVIDENCE_AGENT_CRASHPOINT": "outbox.before_delete"}) as proc:
        assert proc.wait(timeout=60) == -signal.SIGKILL
    assert ledger_count(station, OUTBOX) > 0
    with agent(station):
        wait_ledger(station, SPOOLED, 3)
        wait_ledger(station, OUTBOX, 0)
        want = {e[1] for e in emitted(station)}
        sub.wait_until(lambda: want <= {e["id"] for e in sub.events(f"{P}/events")})
