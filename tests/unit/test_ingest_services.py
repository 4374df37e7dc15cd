"""The ingest services, built once each around one shared `Bays` (issue 18: Ingestor split).

Built here directly, as `agent.ingest.ingestor.Ingestor` builds them: registration, scheduling
(with the spool's space check), copy and commit, recovery. What one service records in the
bays the others act on: a busy bay defers recovery and keeps its recorder from a second claim,
a finished copy frees it.
"""

from __future__ import annotations

from datetime import datetime

from agent.ingest.bays import Bays
from agent.ingest.copyjob import CopyJob
from agent.ingest.ingestor import Ingestor
from agent.ingest.recovery import Recovery
from agent.ingest.register import VolumeRegistration
from agent.ingest.schedule import Scheduler
from agent.ingest.space import SpoolSpace


def test_services_share_one_bays_and_copy_a_volume(station, bodycam):
    ctx = station.context()
    bays = Bays(ctx)
    registration = VolumeRegistration(ctx, bays)
    scheduler = Scheduler(ctx, bays, SpoolSpace(ctx))
    seen: list[tuple[str, int, int]] = []
    copier = CopyJob(ctx, bays, lambda serial, rid, done, total: seen.append((serial, done, total)))
    recovery = Recovery(ctx, bays)
    vol, _ = bodycam(serial="ZFYS001", clips=2, start=datetime(2026, 11, 18, 9, 0))
    report = registration.register_volume(vol)
    assert report.new == 2

    row = scheduler.claim(retry_seconds=0)
    assert row is not None and bays.busy == {report.device_id}
    assert recovery.recover() == 0  # a copy of this process runs: nothing is requeued
    assert scheduler.claim(retry_seconds=0) is None  # one reader per recorder
    outcome = copier.ingest(row)
    assert outcome.state == "spooled" and outcome.sha256
    assert bays.busy == set()  # the bay is free again, whatever the outcome
    assert seen and seen[-1] == ("ZFYS001", outcome.size, outcome.size)

    second = scheduler.claim(retry_seconds=0)
    assert second is not None and second["id"] != row["id"]
    assert copier.ingest(second).state == "spooled"
    states = ctx.ledger.query("SELECT state FROM recordings ORDER BY id")
    assert [r["state"] for r in states] == ["spooled", "spooled"]


def test_a_stalled_recorder_is_skipped_until_it_docks_again(station, bodycam):
    ctx = station.context()
    ing = Ingestor(ctx)
    vol, _ = bodycam(serial="ZFYS002", clips=1, start=datetime(2026, 11, 18, 9, 0))
    report = ing.register_volume(vol)
    ing.bays.stall(report.device_id)  # as the copy does when a read hangs in the kernel
    assert ing.claim(retry_seconds=0) is None
    ing.register_volume(vol)  # a rescan is not a new dock: still skipped
    assert ing.claim(retry_seconds=0) is None
    ing.undock(vol)
    ing.register_volume(vol)  # docked again: forgiven
    row = ing.claim(retry_seconds=0)
    assert row is not None and row["serial"] == "ZFYS002"
    assert ing.ingest(row).state == "spooled"
