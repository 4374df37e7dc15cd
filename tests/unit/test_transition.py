"""The one state change of a recording (issue 18): state, custody event and outbox event commit
together or not at all, on a real ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.core.safefs import SourceFile
from agent.ledger import devices
from agent.ledger import recordings as rec
from agent.ledger.db import Ledger
from drivers.base import DeviceIdentity


def _recording(ledger: Ledger) -> str:
    with ledger.tx() as conn:
        dev = devices.dock(
            conn,
            DeviceIdentity("ZFY", "ZFY0009", "devinfo"),
            registered=True,
            inventory_status="in_service",
            quarantine=False,
            volume="/media/ZFY0009",
        )
        f = SourceFile(b"DCIM/0001.MP4", 10, 1_700_000_000_000_000_000)
        rid, _ = rec.discover_file(conn, dev.device_id, f, {})
    return rid


def _trail(ledger: Ledger, rid: str) -> tuple[str, list[str], list[dict]]:  # type: ignore[type-arg]
    state = ledger.one("SELECT state FROM recordings WHERE id = ?", (rid,))
    kinds = [r["type"] for r in ledger.query("SELECT type FROM custody WHERE recording_id = ?"
                                             " ORDER BY seq", (rid,))]  # fmt: skip
    out = [json.loads(r["payload"]) for r in ledger.query("SELECT payload FROM outbox")]
    return str(state[0]), kinds, [e for e in out if e.get("recording") == rid]  # type: ignore[index]


def test_transition_writes_state_custody_and_event_together(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    rid = _recording(ledger)
    with ledger.tx() as conn:
        rec.transition(
            conn,
            rid,
            "failed",
            fields={"reason": "read error"},
            custody_type="recording.failed",
            payload={"reason": "read error"},
            event="ingest.failed",
            event_fields={"recording": rid, "serial": "ZFY0009", "reason": "read error"},
        )
    state, kinds, events = _trail(ledger, rid)
    assert state == "failed"
    assert kinds == ["recording.discovered", "recording.failed"]
    assert [(e["type"], e["reason"]) for e in events] == [("ingest.failed", "read error")]


def test_a_failed_transaction_leaves_no_half_change(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    rid = _recording(ledger)
    with pytest.raises(RuntimeError), ledger.tx() as conn:
        rec.transition(conn, rid, "failed", custody_type="recording.failed",
                       payload={"reason": "x"}, event="ingest.failed",
                       event_fields={"recording": rid})  # fmt: skip
        raise RuntimeError("crash after the change, before the commit")
    assert _trail(ledger, rid) == ("discovered", ["recording.discovered"], [])


def test_an_unknown_state_is_refused_before_any_write(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    rid = _recording(ledger)
    with pytest.raises(ValueError, match="unknown recording state 'done'"), ledger.tx() as conn:
        rec.transition(conn, rid, "done", custody_type="recording.failed")
    assert _trail(ledger, rid)[:2] == ("discovered", ["recording.discovered"])
