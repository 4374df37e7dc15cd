"""Spool housekeeping removes only archived copies; export fetches them back from the store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from agent.archive.archiver import Archiver
from agent.ledger import custody, stationkey
from agent.retention.housekeeping import housekeep
from fixtures.archive import drain, ingest_volume


def _spool(ctx, rid: str) -> Path:  # type: ignore[no-untyped-def]
    return Path(ctx.ledger.one("SELECT spool_path FROM recordings WHERE id=?", (rid,))[0])


def test_housekeeping_then_export_from_the_store(s3_station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station(spool_keep_days=7)
    vol1, clips = bodycam(serial="ZFY0601", clips=2, seconds=1.0)
    vol2, _ = bodycam(serial="ZFY0602", clips=1, seconds=1.0)
    ctx = s3.context()
    a, b = ingest_volume(ctx, vol1)
    arch = Archiver(ctx)
    drain(arch)
    (c,) = ingest_volume(ctx, vol2)  # spooled, not yet archived

    assert housekeep(ctx, arch.store).removed == []  # within the 7 days kept
    ctx.cfg.archive.spool_min_free_bytes = 1 << 60  # disk pressure: remove early
    result = housekeep(ctx, arch.store)
    assert sorted(result.removed) == sorted([a, b])  # never the copy not yet archived
    assert not _spool(ctx, a).exists() and not _spool(ctx, b).exists() and _spool(ctx, c).exists()
    removed = ctx.ledger.query("SELECT payload FROM custody WHERE type='spool.removed'")
    assert len(removed) == 2 and json.loads(removed[0][0])["reason"] == "disk pressure"

    proc = s3.station.cli("verify", "--json")  # housekept copies are checked in the archive
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["recordings_checked"] == 3, proc.stdout

    out = tmp_path / "export"
    reason = "行政复议调阅 (administrative review)"
    proc = s3.station.cli(
        "export",
        a,
        c,
        "--to",
        str(out),
        "--reason",
        reason,
        "--operator",
        "OP-0042",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    sources = {e["recording_id"]: e["source"] for e in doc["exported"]}
    assert sources == {a: "archive", c: "spool"}
    sha_a = ctx.ledger.one("SELECT sha256 FROM recordings WHERE id=?", (a,))[0]
    exported = out / next(e["file"] for e in doc["exported"] if e["recording_id"] == a)
    assert hashlib.sha256(exported.read_bytes()).hexdigest() == sha_a
    assert sha_a in {hashlib.sha256(p.read_bytes()).hexdigest() for p in clips}

    manifest = json.loads(Path(doc["manifest"]).read_text(encoding="utf-8"))
    assert manifest["operator"] == "OP-0042" and manifest["reason"] == reason
    item = next(i for i in manifest["recordings"] if i["id"] == a)
    assert item["sha256"] == sha_a and item["archive_ref"].startswith("s3://")
    types = [e["type"] for e in item["custody"]]
    assert types[0] == "recording.discovered" and "recording.archived" in types
    assert types[-1] == "recording.exported"
    signature = bytes.fromhex(manifest.pop("signature"))
    pub = stationkey.load_public(ctx.cfg.keys_dir)
    assert pub is not None
    pub.verify(signature, custody.canonical(manifest).encode("utf-8"))

    events = ctx.ledger.query(
        "SELECT recording_id, actor, payload FROM custody WHERE type='recording.exported'"
    )
    assert {e["recording_id"] for e in events} == {a, c}
    for e in events:
        payload = json.loads(e["payload"])
        assert e["actor"] == "OP-0042" and payload["reason"] == reason
    assert s3.station.cli("verify").returncode == 0

    again = s3.station.cli("export", a, "--to", str(out), "--reason", "x", "--operator", "y")
    assert again.returncode == 1 and "already exists" in again.stderr
    unknown = s3.station.cli(
        "export", "deadbeef0000", "--to", str(out), "--reason", "x", "--operator", "y"
    )
    assert unknown.returncode == 1 and "no recording whose SHA-256 starts with" in unknown.stderr
