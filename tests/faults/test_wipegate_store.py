"""The wipe gate asks the store right before erasing (issue 12, item 6), against SeaweedFS.

Reproduced before the fix: once the ledger said `archived`, the gate erased the recorder's
file without asking the store again, so an object deleted or replaced in the bucket since, or
retained for too short a time, still opened the gate. Now the store must confirm size,
checksum and retention (with `archive.release_retention_margin_days`) or the source stays.
"""

from __future__ import annotations

from agent.archive.archiver import Archiver
from agent.archive.s3.store import parse_ref
from agent.ledger import recordings as rec
from agent.retention import wipegate
from fixtures.archive import drain, ingest_volume


def _archived(s3, bodycam, serial: str, clips: int = 1):  # type: ignore[no-untyped-def]
    vol, paths = bodycam(serial=serial, clips=clips, seconds=1.0)
    ctx = s3.context()
    ids = ingest_volume(ctx, vol)
    arch = Archiver(ctx)
    drain(arch)
    assert {rec.get(ctx.ledger.connect(), i)["state"] for i in ids} == {"archived"}
    # Archived under `never` (so the archiver itself erases nothing); now the gate may open.
    ctx.cfg.ingest.release_after = "archived"
    by_id = {}
    for rid in ids:
        name = rec.get(ctx.ledger.connect(), rid)["source_path"].rsplit("/", 1)[-1]
        by_id[rid] = next(p for p in paths if p.name == name)
    return ctx, arch, by_id


def test_object_deleted_or_replaced_in_the_store_keeps_the_source(s3_station, bodycam):
    s3 = s3_station(lock=False, object_lock=False)
    ctx, arch, clips = _archived(s3, bodycam, "ZFY1261", clips=3)
    gone, changed, fine = sorted(clips)
    client = s3.server.client()
    bucket, key, version = parse_ref(rec.get(ctx.ledger.connect(), gone)["archive_ref"])
    kw = {"VersionId": version} if version else {}
    client.delete_object(Bucket=bucket, Key=key, **kw)
    bucket, key, _ = parse_ref(rec.get(ctx.ledger.connect(), changed)["archive_ref"])
    client.put_object(Bucket=bucket, Key=key, Body=b"not the recording")

    for rid in (gone, changed):
        d = wipegate.release(ctx.cfg, ctx.ledger, rid, arch.store)
        assert not d.allowed and "store no longer confirms" in d.reason, d
        assert clips[rid].exists()
        assert rec.get(ctx.ledger.connect(), rid)["state"] == "archived"
    d = wipegate.release(ctx.cfg, ctx.ledger, fine, arch.store)  # the control: it still holds
    assert d.allowed, d.reason
    assert not clips[fine].exists()


def test_retention_shorter_than_the_margin_keeps_the_source(s3_station, bodycam):
    s3 = s3_station(raw="[archive.retention]\ndays = 1\n")
    ctx, arch, clips = _archived(s3, bodycam, "ZFY1262")
    (rid,) = clips
    assert ctx.cfg.archive.release_retention_margin_days == 30
    d = wipegate.release(ctx.cfg, ctx.ledger, rid, arch.store)
    assert not d.allowed and "retained only until" in d.reason, d
    assert clips[rid].exists()

    ctx.cfg.archive.release_retention_margin_days = 0  # the store's one day is then enough
    d = wipegate.release(ctx.cfg, ctx.ledger, rid, arch.store)
    assert d.allowed, d.reason
    assert not clips[rid].exists()
