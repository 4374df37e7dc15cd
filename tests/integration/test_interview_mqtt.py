"""Interview sessions driven over MQTT (real Mosquitto): the commands the MQTT plane routes to
agent.interview.commands, their replies, and the interview events on the events topic."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fixtures.consoles import ConsoleKey, add_console
from fixtures.mqtt_agent import mqtt_config, running, validate
from fixtures.station import Station

P = "evidence/test-station"
CONSOLES: dict[str, ConsoleKey] = {}


def _send(sub: Any, verb: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Signed with the console key of the operator the payload names (`operator`)."""
    args = dict(payload)
    console: ConsoleKey = CONSOLES[args.pop("operator")]
    before = len(sub.on(f"{P}/reply/{verb}"))
    sub.publish(f"{P}/cmd/{verb}", console.sign(verb, args))
    sub.wait_until(lambda: len(sub.on(f"{P}/reply/{verb}")) > before, timeout=40)
    reply: dict[str, Any] = sub.on(f"{P}/reply/{verb}")[before].json()
    validate("command-reply", reply)
    return reply


def test_sessions_over_mqtt(
    make_interview_station: Callable[..., Station], broker: Any, subscribe: Any
) -> None:
    st = make_interview_station(segment_seconds=2, toml=mqtt_config(broker.url))
    for officer in ("op7", "op8"):
        CONSOLES[officer] = add_console(st, officer, "officer")
    sub = subscribe(broker, f"{P}/reply/#", f"{P}/events", f"{P}/availability")
    with running(st) as daemon:
        sub.wait_for(lambda m: m.payload == b"online")
        start = _send(
            sub,
            "interview_start",
            {"operator": "op7", "case_number": "NJ-2026-7", "interviewers": ["100001"]},
        )
        assert start["ok"], start
        result = start["result"]
        assert result["state"] == "recording" and result["case_number"] == "NJ-2026-7"
        again = _send(sub, "interview_start", {"operator": "op7"})
        assert not again["ok"] and "stop it first" in again["error"]
        time.sleep(2.5)
        stop = _send(sub, "interview_stop", {"operator": "op8"})
        assert stop["ok"] and stop["result"]["state"] == "closed", stop
        assert stop["result"]["coverage"] == 1.0
        nothing = _send(sub, "interview_stop", {"operator": "op8"})
        assert not nothing["ok"] and "nothing to stop" in nothing["error"]

        def event(kind: str) -> dict[str, Any]:
            return dict(
                sub.wait_for(lambda m: m.topic == f"{P}/events" and m.json()["type"] == kind).json()
            )

        started, stopped = event("interview.started"), event("interview.stopped")
        for e in (started, stopped):
            validate("event", e)
        assert started["session"] == result["session"] == stopped["session"]
        assert stopped["coverage"] == 1.0 and stopped["segments"] >= 1
        assert "subject" not in started and "interviewers" not in started  # people stay off
        custody = daemon.ctx.ledger.query(
            "SELECT type, actor FROM custody WHERE type LIKE 'interview.%request%'"
        )
        assert [(r["type"], r["actor"]) for r in custody] == [
            ("interview.requested", "op7"),
            ("interview.stop_requested", "op8"),
        ]
        requested = daemon.ctx.ledger.one("SELECT requested_by FROM interview_sessions")
        assert requested["requested_by"] == "mqtt"
