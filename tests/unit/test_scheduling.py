"""Ingest order: priority, then earliest deadline, then oldest recording."""

from __future__ import annotations

from datetime import datetime

from agent.ingest.ingestor import Ingestor


def test_earliest_deadline_first_across_recorders(station, bodycam):
    ctx = station.context()
    ing = Ingestor(ctx)
    # Recorder B's footage is older (earlier deadline) though it docks second.
    vol_a, _ = bodycam(serial="ZFYA001", clips=2, start=datetime(2026, 11, 18, 9, 0))
    vol_b, _ = bodycam(serial="ZFYB001", clips=2, start=datetime(2026, 9, 30, 9, 0))
    ing.register_volume(vol_a)
    ing.register_volume(vol_b)
    order = []
    while (row := ing.claim(retry_seconds=0)) is not None:
        order.append((row["serial"], row["deadline"]))
        ing.ingest(row)
    assert [s for s, _ in order] == ["ZFYB001", "ZFYB001", "ZFYA001", "ZFYA001"]
    assert order[0][1] == "2026-10-09T23:59:59.999999+08:00"
    assert order[-1][1] == "2026-11-20T23:59:59.999999+08:00"


def test_priority_overrides_deadline(station, bodycam):
    ctx = station.context()
    ing = Ingestor(ctx)
    vol_a, _ = bodycam(serial="ZFYA002", clips=1, start=datetime(2026, 11, 18, 9, 0))
    vol_b, _ = bodycam(serial="ZFYB002", clips=1, start=datetime(2026, 9, 30, 9, 0))
    ing.register_volume(vol_a)
    ing.register_volume(vol_b)
    with ctx.ledger.tx() as conn:
        conn.execute("UPDATE recordings SET priority = 5 WHERE source_path LIKE '%ZFYA002%'")
    assert ing.claim(retry_seconds=0)["serial"] == "ZFYA002"


def test_one_reader_per_recorder(station, bodycam):
    ctx = station.context()
    ing = Ingestor(ctx)
    vol, _ = bodycam(serial="ZFYC001", clips=2)
    ing.register_volume(vol)
    first = ing.claim(retry_seconds=0)
    assert first is not None
    assert ing.claim(retry_seconds=0) is None  # same recorder busy: no second reader
    ing.ingest(first)
    assert ing.claim(retry_seconds=0) is not None
