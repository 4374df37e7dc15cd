"""The wipe gate refuses when any one of its four conditions is false (one test each)."""

from __future__ import annotations

import os

import pytest

from agent.archive.archiver import Archiver
from agent.archive.stores import open_store
from agent.core import clock
from agent.ingest.ingestor import Ingestor
from agent.ledger import recordings as rec
from agent.retention import wipegate
from agent.retention.release import Releaser

GATE_OPEN = """
[archive]
off_station = true
"""


@pytest.fixture
def archived(make_station, bodycam):
    """One recording, ingested and archived to an off-station store, policy `archived`."""
    st = make_station(GATE_OPEN.replace("[archive]", 'release_after = "archived"\n[archive]'))
    ctx = st.context()
    vol, clips = bodycam(serial="ZFY0400", clips=1)
    ing = Ingestor(ctx)
    ing.register_volume(vol)
    row = ing.claim(retry_seconds=0)
    assert row is not None
    assert ing.ingest(row).state == "spooled"
    arch = Archiver(ctx)
    arch.archive_one(arch.next_pending())
    return ctx, row["id"], clips[0]


def _decide(ctx, rid):
    row = rec.get(ctx.ledger.connect(), rid)
    return wipegate.check(ctx.cfg, row, wipegate.committed_row(ctx.ledger.path, rid))


def test_all_four_hold_erases_source(archived):
    ctx, rid, clip = archived
    assert _decide(ctx, rid).allowed
    assert wipegate.release(ctx.cfg, ctx.ledger, rid, Archiver(ctx).store).allowed
    assert not clip.exists()
    assert rec.get(ctx.ledger.connect(), rid)["state"] == "released"


def test_1_no_verified_spool_copy(archived):
    ctx, rid, clip = archived
    with ctx.ledger.tx() as conn:
        conn.execute("UPDATE recordings SET verified_at = NULL WHERE id = ?", (rid,))
    d = wipegate.release(ctx.cfg, ctx.ledger, rid)
    assert not d.allowed and "verified" in d.reason
    assert clip.exists()


def test_2_source_changed_since_hashing(archived):
    ctx, rid, clip = archived
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    d = wipegate.release(ctx.cfg, ctx.ledger, rid)
    assert not d.allowed and "changed" in d.reason
    assert clip.exists()


def test_3_release_point_not_reached(archived):
    ctx, rid, clip = archived
    ctx.cfg.archive.off_station = False  # the archive is on this station after all
    d = wipegate.release(ctx.cfg, ctx.ledger, rid)
    assert not d.allowed and "on this station" in d.reason
    ctx.cfg.archive.off_station = True
    with ctx.ledger.tx() as conn:
        rec.transition(conn, rid, "spooled", fields={"archive_verified_at": None})
    d = wipegate.release(ctx.cfg, ctx.ledger, rid)
    assert not d.allowed and "not yet archived" in d.reason
    assert clip.exists()


def test_4_ledger_row_not_committed(archived):
    ctx, rid, clip = archived
    with ctx.ledger.tx() as conn:
        rec.transition(conn, rid, "spooled", fields={"archive_verified_at": None})
    conn = ctx.ledger.connect()
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Inside an open transaction the row claims `archived`; nothing is committed yet.
        rec.transition(conn, rid, "archived", fields={"archive_verified_at": clock.now_iso()})
        row = rec.get(conn, rid)
        d = wipegate.check(ctx.cfg, row, wipegate.committed_row(ctx.ledger.path, rid))
    finally:
        conn.execute("ROLLBACK")
    assert not d.allowed and "committed" in d.reason
    assert clip.exists()


def test_default_config_never_erases(make_station, bodycam):
    st = make_station()
    ctx = st.context()
    assert ctx.cfg.ingest.release_after == "archived" and not ctx.cfg.archive.off_station
    vol, clips = bodycam(serial="ZFY0401", clips=1)
    ing = Ingestor(ctx)
    ing.register_volume(vol)
    ing.ingest(ing.claim(retry_seconds=0))
    store = open_store(ctx)
    arch = Archiver(ctx, store)
    arch.archive_one(arch.next_pending())
    assert Releaser(ctx, store).release_ready() == 0
    assert clips[0].exists()


def test_quarantined_is_never_released(archived):
    ctx, rid, clip = archived
    with ctx.ledger.tx() as conn:
        rec.transition(conn, rid, "quarantined")
    assert not wipegate.release(ctx.cfg, ctx.ledger, rid).allowed
    assert clip.exists()


def test_archived_without_asking_the_store_keeps_the_source(archived):
    ctx, rid, clip = archived
    d = wipegate.release(ctx.cfg, ctx.ledger, rid)  # no store to ask: any doubt keeps it
    assert not d.allowed and "store" in d.reason
    assert clip.exists()
