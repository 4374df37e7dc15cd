"""Bad input for the archive, against a real SeaweedFS: each gives one clear error and event,
retries where waiting helps, and never marks anything `archived` the store does not hold."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from agent.archive.archiver import Archiver
from agent.archive.s3.multipart import MultipartUploader
from agent.archive.s3.partplan import plan
from agent.archive.s3.store import parse_ref
from agent.core import clock
from fixtures.archive import MIB, drain, ingest_volume, write_big_clip
from fixtures.s3proxy import CountingProxy, Fault
from fixtures.seaweed import iam_config


def _events(ctx, type_: str) -> list[dict]:  # type: ignore[no-untyped-def]
    rows = ctx.ledger.query("SELECT payload FROM outbox WHERE type=? ORDER BY seq", (type_,))
    return [json.loads(r["payload"]) for r in rows]


def _states(ctx) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r["id"]: r["state"] for r in ctx.ledger.query("SELECT id, state FROM recordings")}


def _keys(server, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    resp = server.client().list_objects_v2(Bucket=bucket, Prefix="evidence/UNIT01/")
    return [o["Key"] for o in resp.get("Contents", [])]


def test_bit_flip_in_spool_is_refused_with_integrity_violation(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station()
    vol, _ = bodycam(serial="ZFY0401", clips=2, seconds=1.0)
    ctx = s3.context()
    bad, good = ingest_volume(ctx, vol)
    spool = Path(ctx.ledger.one("SELECT spool_path FROM recordings WHERE id=?", (bad,))[0])
    data = bytearray(spool.read_bytes())
    data[len(data) // 2] ^= 0x10
    spool.chmod(0o644)
    spool.write_bytes(bytes(data))

    drain(Archiver(ctx))
    assert _states(ctx) == {bad: "spooled", good: "archived"}  # the queue went on
    violations = _events(ctx, "integrity.violation")
    assert [(v["recording"], v["where"]) for v in violations] == [(bad, "spool")]
    custody = ctx.ledger.query("SELECT type FROM custody WHERE recording_id=? ORDER BY seq", (bad,))
    assert custody[-1]["type"] == "integrity.violation"
    row = ctx.ledger.one(
        "SELECT archive_error, archive_retry_at FROM recordings WHERE id=?", (bad,)
    )
    assert "no longer matches its SHA-256" in row["archive_error"]
    assert not any(bad in k for k in _keys(s3.server, s3.bucket))


def test_wrong_credentials_then_fixed(s3_station, seaweed_factory, bodycam) -> None:  # type: ignore[no-untyped-def]
    server = seaweed_factory(iam=iam_config())
    s3 = s3_station(server=server)
    vol, _ = bodycam(serial="ZFY0402", clips=1, seconds=1.0)
    ctx = s3.context()
    (rid,) = ingest_volume(ctx, vol)
    creds = ctx.cfg.credentials.file
    good = creds.read_text()
    creds.write_text(good.replace("evidence-test-secret", "wrong-secret"))
    arch = Archiver(ctx)
    for _ in range(3):
        assert arch.step() > 0
    failed = _events(ctx, "archive.failed")
    assert len(failed) == 1 and failed[0]["scope"] == "store"  # one event, not one per retry
    assert "refused the credentials" in failed[0]["reason"]
    assert _states(ctx) == {rid: "spooled"}
    creds.write_text(good)  # fixed without a restart
    drain(arch)
    assert _states(ctx) == {rid: "archived"}


@pytest.mark.parametrize("problem", ["missing", "no-lock"])
def test_bucket_problems_are_named(s3_station, bodycam, problem) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station(lock=problem != "no-lock")
    vol, _ = bodycam(serial="ZFY0403", clips=1, seconds=1.0)
    ctx = s3.context()
    if problem == "missing":
        s3.server.client().delete_bucket(Bucket=s3.bucket)
    (rid,) = ingest_volume(ctx, vol)
    assert Archiver(ctx).step() > 0
    (failed,) = _events(ctx, "archive.failed")
    expected = "does not exist" if problem == "missing" else "has no Object Lock"
    assert expected in failed["reason"] and s3.bucket in failed["reason"]
    assert _states(ctx) == {rid: "spooled"}
    proc = s3.station.cli("status", "--json")
    backlog = json.loads(proc.stdout)["station"]["upload_backlog"]
    assert backlog["recordings"] == 1 and expected in backlog["last_error"]


def test_store_without_object_lock_when_not_required(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station(lock=False, object_lock=False)
    vol, _ = bodycam(serial="ZFY0404", clips=1, seconds=1.0)
    ctx = s3.context()
    (rid,) = ingest_volume(ctx, vol)
    drain(Archiver(ctx))
    assert _states(ctx) == {rid: "archived"}
    ref = ctx.ledger.one("SELECT archive_ref FROM recordings")[0]
    b, k, v = parse_ref(ref)
    assert "ObjectLockMode" not in s3.server.client().head_object(Bucket=b, Key=k)


def test_clock_skew_refuses_to_upload(s3_station, bodycam, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station()
    vol, _ = bodycam(serial="ZFY0405", clips=1, seconds=1.0)
    ctx = s3.context()
    (rid,) = ingest_volume(ctx, vol)
    real = clock.now
    monkeypatch.setattr(clock, "now", lambda: real() + timedelta(hours=2))
    assert Archiver(ctx).step() > 0
    (failed,) = _events(ctx, "archive.failed")
    assert "clock" in failed["reason"] and "Synchronise" in failed["reason"]
    assert _states(ctx) == {rid: "spooled"}


def test_slowdown_backs_off_then_drains(s3_station, seaweed, bodycam) -> None:  # type: ignore[no-untyped-def]
    proxy = CountingProxy(seaweed.s3)
    try:
        s3 = s3_station(endpoint=proxy.url)
        vol, _ = bodycam(serial="ZFY0406", clips=1, seconds=1.0)
        ctx = s3.context()
        (rid,) = ingest_volume(ctx, vol)
        puts = lambda m, q: m == "PUT" and not q  # noqa: E731 - PutObject of the recording
        proxy.inject(Fault(puts, times=4, status=503, code="SlowDown"))
        arch = Archiver(ctx)
        assert arch.step() > 0  # two attempts (max_attempts = 2), both 503: store backs off
        (failed,) = _events(ctx, "archive.failed")
        assert "SlowDown" in failed["reason"] and _states(ctx) == {rid: "spooled"}
        drain(arch)  # two more 503s absorbed by boto3's retry, then it goes through
        assert _states(ctx) == {rid: "archived"}
        statuses = [r.status for r in proxy.requests if r.method == "PUT" and not r.query]
        assert statuses[:4] == [503] * 4 and 200 in statuses[4:]
    finally:
        proxy.close()


def test_part_rejected_for_bad_checksum_is_resent(s3_station, seaweed, bodycam) -> None:  # type: ignore[no-untyped-def]
    proxy = CountingProxy(seaweed.s3)
    try:
        s3 = s3_station(
            endpoint=proxy.url, part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB
        )
        vol, _ = bodycam(serial="ZFY0407", clips=1, seconds=1.0)
        big = write_big_clip(vol, "ZFY0407", "100001", 11 * MIB)
        ctx = s3.context()
        ingest_volume(ctx, vol)
        part2 = lambda m, q: m == "PUT" and q.get("partNumber") == ["2"]  # noqa: E731
        proxy.inject(Fault(part2, times=1, corrupt=True))  # one bit flipped on the wire
        drain(Archiver(ctx))
        assert set(_states(ctx).values()) == {"archived"}
        sent = [p.status for p in proxy.upload_parts() if p.part_number == 2]
        assert sent == [400, 200]  # BadDigest, then the same bytes again
        row = ctx.ledger.one("SELECT archive_ref, sha256 FROM recordings WHERE size > ?", (MIB,))
        b, k, v = parse_ref(row["archive_ref"])
        body = seaweed.client().get_object(Bucket=b, Key=k, VersionId=v)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == row["sha256"] == _sha(big)
    finally:
        proxy.close()


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_spool_read_error_fails_one_recording_only(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station()
    vol, _ = bodycam(serial="ZFY0408", clips=2, seconds=1.0)
    ctx = s3.context()
    lost, fine = ingest_volume(ctx, vol)
    Path(ctx.ledger.one("SELECT spool_path FROM recordings WHERE id=?", (lost,))[0]).unlink()
    drain(Archiver(ctx))
    assert _states(ctx) == {lost: "spooled", fine: "archived"}
    failed = _events(ctx, "archive.failed")
    assert failed and {f["recording"] for f in failed} == {lost}
    assert "cannot read spool copy" in failed[0]["reason"]


def test_parts_stored_but_not_recorded_are_adopted(s3_station, seaweed, bodycam) -> None:  # type: ignore[no-untyped-def]
    """The agent died after the store took parts but before the ledger recorded them."""
    proxy = CountingProxy(seaweed.s3)
    try:
        s3 = s3_station(
            endpoint=proxy.url, part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB
        )
        vol = s3.station.dir / "vol"
        write_big_clip(vol, "ZFY0409", "100001", 16 * MIB)
        (vol / "DEVINFO.TXT").write_text("serial=ZFY0409\n")
        ctx = s3.context()
        (rid,) = ingest_volume(ctx, vol)
        arch = Archiver(ctx)
        store = arch.store
        row = ctx.ledger.one("SELECT * FROM recordings WHERE id=?", (rid,))
        from agent.archive.store import spec_for

        spec = spec_for(
            ctx,
            ctx.ledger.one(
                "SELECT r.*, d.serial FROM recordings r JOIN devices d ON d.id=r.device_id"
                " WHERE r.id=?",
                (rid,),
            ),
        )
        key = store.object_key(spec)
        _, parts = plan(Path(row["spool_path"]), spec.size, 5 * MIB)
        up = MultipartUploader(store.client, ctx.ledger, s3.bucket, 2, ctx.stop, store.tr)
        uid = up._create(key, spec, 5 * MIB, parts, store._metadata(spec))
        data = Path(row["spool_path"]).read_bytes()
        for p in parts[:3]:  # stored on the server; the ledger never heard of them
            store.client.upload_part(
                Bucket=s3.bucket,
                Key=key,
                UploadId=uid,
                PartNumber=p.number,
                Body=data[p.offset : p.offset + p.size],
                ChecksumSHA256=p.checksum,
            )
        sent_before = len(proxy.upload_parts())
        drain(arch)
        resent = [p.part_number for p in proxy.upload_parts()[sent_before:]]
        assert resent == [4]
        assert _states(ctx) == {rid: "archived"}
    finally:
        proxy.close()


def test_abandoned_uploads_are_aborted_only_when_ours(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    import time

    from agent.archive.store import spec_for

    s3 = s3_station(abandoned_upload_hours=0.0002)  # 0.72 s
    vol, _ = bodycam(serial="ZFY0410", clips=1, seconds=1.0)
    ctx = s3.context()
    (rid,) = ingest_volume(ctx, vol)
    arch = Archiver(ctx)
    row = ctx.ledger.one(
        "SELECT r.*, d.serial FROM recordings r JOIN devices d ON d.id = r.device_id"
    )
    key = arch.store.object_key(spec_for(ctx, row))
    client = s3.server.client()
    # Started, then the agent died before the ledger recorded the UploadId:
    ours = client.create_multipart_upload(Bucket=s3.bucket, Key=key)["UploadId"]
    # Another station writing under the same prefix:
    foreign_key = "evidence/UNIT09/2026/01/01/X9/01900000-0000-7000-8000-000000000000.mp4"
    other = client.create_multipart_upload(Bucket=s3.bucket, Key=foreign_key)["UploadId"]
    time.sleep(2)
    arch.maintain(force=True)
    left = client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert {u["UploadId"] for u in left} == {other} and ours != other
    drain(arch)
    assert _states(ctx) == {rid: "archived"}


def test_sampled_audit_reads_objects_back(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station(audit_sample_rate=1.0)
    vol, _ = bodycam(serial="ZFY0411", clips=2, seconds=1.0)
    ctx = s3.context()
    ingest_volume(ctx, vol)
    drain(Archiver(ctx))
    rows = ctx.ledger.query("SELECT audited_at, audit_ok FROM archive_objects")
    assert len(rows) == 2 and all(r["audited_at"] and r["audit_ok"] == 1 for r in rows)
