"""Acceptance against a real SeaweedFS: ingest then archive, WORM, verification, rclone."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from agent.archive.archiver import Archiver
from agent.archive.s3.store import parse_ref
from fixtures.archive import MIB, drain, ingest_volume, tag, write_big_clip
from fixtures.seaweed import ACCESS_KEY, SECRET_KEY
from toolcheck import require_tool


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _archived(ctx, rid):  # type: ignore[no-untyped-def]
    return ctx.ledger.one(
        "SELECT r.state, r.sha256, r.size, r.source_path, r.archive_ref, r.archive_verified_at,"
        " o.checksum, o.retain_until, o.legal_hold FROM recordings r"
        " JOIN archive_objects o ON o.recording_id = r.id WHERE r.id = ?",
        (rid,),
    )


def test_ten_clips_archived_locked_and_read_back(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB)
    vol, clips = bodycam(serial="ZFY0101", clips=8, seconds=1.0)
    clips += [write_big_clip(vol, "ZFY0101", "100001", 12 * MIB, seq=90 + i) for i in range(2)]
    source = {p.name: _sha(p) for p in clips}
    ctx = s3.context()
    ids = ingest_volume(ctx, vol)
    assert len(ids) == 10
    drain(Archiver(ctx))

    client = s3.server.client()
    now = datetime.now(UTC)
    composite = 0
    for rid in ids:
        row = _archived(ctx, rid)
        assert row is not None and row["state"] == "archived" and row["archive_verified_at"]
        bucket, key, version = parse_ref(row["archive_ref"])
        assert bucket == s3.bucket and key.startswith("evidence/UNIT01/") and version
        body = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == source[Path(row["source_path"]).name]
        head = client.head_object(Bucket=bucket, Key=key, VersionId=version)
        assert head["Metadata"]["sha256"] == row["sha256"]
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] > now + timedelta(days=185)
        with pytest.raises(ClientError):
            client.delete_object(Bucket=bucket, Key=key, VersionId=version)
        assert client.head_object(Bucket=bucket, Key=key, VersionId=version)["ContentLength"]
        composite += row["checksum"].endswith("-3")
    assert composite == 2  # the two 12 MiB clips went up in three parts each
    events = [r["type"] for r in ctx.ledger.query("SELECT type FROM outbox")]
    assert events.count("archive.completed") == 10
    assert "archive.failed" not in events
    proc = s3.station.cli("verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sidecar_case_index_legal_hold_and_anchors(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station(raw="[archive.retention.categories]\nevidence = { days = 3650 }\n")
    vol, _ = bodycam(serial="ZFY0102", clips=2, seconds=1.0)
    ctx = s3.context()
    first, second = ingest_volume(ctx, vol)
    case = "环罚〔2026〕12号"
    tag(ctx, first, {"case_number": case, "category": "evidence", "proves": "现场检查"})
    arch = Archiver(ctx)
    drain(arch)
    client = s3.server.client()

    bucket, key, version = parse_ref(_archived(ctx, first)["archive_ref"])
    head = client.head_object(Bucket=bucket, Key=key, VersionId=version)
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=3600)
    sidecar = json.loads(client.get_object(Bucket=bucket, Key=key + ".meta.json")["Body"].read())
    assert sidecar["sha256"] == head["Metadata"]["sha256"]
    assert sidecar["metadata"]["case_number"] == case and sidecar["metadata_version"] == 1
    listing = client.list_objects_v2(Bucket=bucket, Prefix="evidence/_cases/")["Contents"]
    assert [o["Key"].rsplit("/", 1)[-1] for o in listing] == [f"{first}.json"]
    assert all(ord(c) < 128 for o in listing for c in o["Key"])

    # A later tag puts the second recording into the case: legal hold added to the locked
    # version, a new sidecar version, the video itself untouched.
    b2, k2, v2 = parse_ref(_archived(ctx, second)["archive_ref"])
    assert client.head_object(Bucket=b2, Key=k2, VersionId=v2)["ObjectLockLegalHoldStatus"] != "ON"
    tag(ctx, second, {"case_number": case})
    arch.maintain(force=True)
    assert client.head_object(Bucket=b2, Key=k2, VersionId=v2)["ObjectLockLegalHoldStatus"] == "ON"
    versions = client.list_object_versions(Bucket=b2, Prefix=k2)["Versions"]
    assert sorted(v["Key"] for v in versions) == [k2, k2 + ".meta.json", k2 + ".meta.json"]
    listing = client.list_objects_v2(Bucket=bucket, Prefix="evidence/_cases/")["Contents"]
    assert len(listing) == 2 and len({o["Key"].rsplit("/", 2)[-2] for o in listing}) == 1

    # Custody anchors: the station key and signed checkpoints, write-once.
    from agent.ledger import custody

    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id)
    arch.maintain(force=True)
    anchors = client.list_objects_v2(Bucket=bucket, Prefix="evidence/_custody/")["Contents"]
    names = [o["Key"] for o in anchors]
    assert any("/keys/" in n and n.endswith(".pem") for n in names)
    cps = [n for n in names if "/checkpoints/" in n]
    assert cps
    cp = client.head_object(Bucket=bucket, Key=cps[-1])
    assert cp["ObjectLockMode"] == "COMPLIANCE"
    report = json.loads(s3.station.cli("verify", "--json").stdout)
    assert report["ok"] and report["anchors_checked"] == len(cps), report


def test_rclone_lists_and_reads_back(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    rclone = require_tool("rclone")
    s3 = s3_station(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB)
    vol, _ = bodycam(serial="ZFY0103", clips=2, seconds=1.0)
    write_big_clip(vol, "ZFY0103", "100001", 11 * MIB)
    ctx = s3.context()
    ids = ingest_volume(ctx, vol)
    drain(Archiver(ctx))
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone 1.60 chokes
    env.update(
        RCLONE_CONFIG_SW_TYPE="s3",
        RCLONE_CONFIG_SW_PROVIDER="SeaweedFS",
        RCLONE_CONFIG_SW_ENDPOINT=s3.endpoint,
        RCLONE_CONFIG_SW_ACCESS_KEY_ID=ACCESS_KEY,
        RCLONE_CONFIG_SW_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_SW_FORCE_PATH_STYLE="true",
    )
    remote = f"sw:{s3.bucket}/evidence"

    def run(*args: str) -> str:
        proc = subprocess.run([rclone, *args], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    listing = json.loads(run("lsjson", "-R", "--files-only", "-M", remote))
    hashes = dict(
        reversed(line.split(None, 1))
        for line in run("hashsum", "sha256", "--download", remote).splitlines()
    )
    for rid in ids:
        row = _archived(ctx, rid)
        _, key, _ = parse_ref(row["archive_ref"])
        rel = key.removeprefix("evidence/")
        entry = next(e for e in listing if e["Path"] == rel)
        assert entry["Size"] == row["size"]
        assert entry["Metadata"]["sha256"] == row["sha256"]
        assert hashes[rel] == row["sha256"]


def test_bandwidth_cap_is_shared_by_parallel_parts(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    import time

    cap = 4 * MIB
    s3 = s3_station(
        part_size_bytes=5 * MIB,
        multipart_threshold_bytes=5 * MIB,
        parallel_parts=3,
        bandwidth_bytes_per_s=cap,
    )
    vol = s3.station.dir / "vol"
    write_big_clip(vol, "ZFY0104", "100001", 12 * MIB)
    (vol / "DEVINFO.TXT").write_text("serial=ZFY0104\n")
    ctx = s3.context()
    (rid,) = ingest_volume(ctx, vol)
    arch = Archiver(ctx)
    started = time.monotonic()
    drain(arch)
    elapsed = time.monotonic() - started
    # 12 MiB at 4 MiB/s with one second of burst allowed: at least ~2 s, whatever the parallelism.
    assert elapsed >= (12 * MIB - cap) / cap * 0.9, elapsed
    assert _archived(ctx, rid)["state"] == "archived"
    from agent.archive.backlog import archive_backlog

    backlog = archive_backlog(ctx)
    assert backlog["limit_bytes_per_s"] == cap and backlog["rate_bytes_per_s"] <= cap * 1.2
