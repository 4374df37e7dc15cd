"""Checkpoints per N events or per interval (issue 12, item 4), on a real ledger."""

from __future__ import annotations

from datetime import timedelta

from agent.core import clock
from agent.ledger import cadence, custody
from agent.ledger.db import Ledger
from agent.ledger.stationkey import load_or_create


def test_checkpoint_is_due_per_events_or_per_interval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    key = load_or_create(tmp_path / "keys")
    conn = ledger.connect()
    assert cadence.due(conn, 10, 3600)  # the first checkpoint, even of an empty chain
    with ledger.tx() as c:
        custody.append(c, "station.note", {"n": 0})
    assert cadence.due(conn, 10, 3600)
    with ledger.tx() as c:
        custody.checkpoint(c, key, "st")
    assert not cadence.due(conn, 10, 3600)  # head has not moved
    with ledger.tx() as c:
        for n in range(9):
            custody.append(c, "station.note", {"n": n})
    assert not cadence.due(conn, 10, 3600)  # 9 events, a minute later: not yet
    assert cadence.due(conn, 10, 3600, now=clock.now() + timedelta(seconds=3601))
    with ledger.tx() as c:
        custody.append(c, "station.note", {"n": 9})
    assert cadence.due(conn, 10, 3600)  # the 10th event
