"""archive.encryption against a real SeaweedFS (issue 19): "client" uploads the envelope (no
clip bytes in the bucket, the recovery key alone opens it, verify and verify-archive pass, a
flipped byte is caught naming the recording); "server" asks for SSE and records what it got."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

from agent.archive.archiver import Archiver
from agent.archive.s3.store import parse_ref
from agent.core import envelope, envstream
from agent.station import kek
from fixtures.archive import MIB, drain, ingest_volume, write_big_clip
from fixtures.probe import ffprobe_finds_media
from fixtures.s3proxy import CountingProxy


def _keys(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "etc-keys" / "encryption.key"
    kek.write_ring(path, [os.urandom(32)])
    priv, pub = kek.new_recovery_pair(tmp_path / "agency")
    raw = f'[crypto]\nencrypt = "required"\nkey_file = "{path}"\nrecovery_public_key = "{pub}"\n'
    return raw, priv


def _objects(s3, ctx):  # type: ignore[no-untyped-def]
    client = s3.server.client()
    out = {}
    for r in ctx.ledger.query("SELECT id, sha256, source_path, archive_ref FROM recordings"):
        bucket, key, version = parse_ref(r["archive_ref"])
        out[r["id"]] = (r, bucket, key, version, client)
    return out


def _archived_encryption(ctx):  # type: ignore[no-untyped-def]
    rows = ctx.ledger.query(
        "SELECT payload FROM custody WHERE type='recording.archived' ORDER BY seq"
    )
    return [json.loads(r["payload"])["encryption"] for r in rows]


def _drop_spool(st, ctx) -> None:  # type: ignore[no-untyped-def]
    """As housekeeping would: verify and export then read the archived objects."""
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    with conn:
        for (rel,) in conn.execute("SELECT spool_path FROM recordings").fetchall():
            (ctx.cfg.spool_dir / rel).unlink()
        conn.execute("UPDATE recordings SET spool_removed_at = '2026-12-03T00:00:00+08:00'")
    conn.close()


def test_client_encryption_uploads_envelopes_the_recovery_key_opens(s3_station, bodycam, tmp_path):  # type: ignore[no-untyped-def]
    raw, recovery_key = _keys(tmp_path)
    s3 = s3_station(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB,
                    encryption="client", raw=raw)  # fmt: skip
    vol, clips = bodycam(serial="ZFY1920", clips=2, seconds=1.0)
    clips.append(write_big_clip(vol, "ZFY1920", "100001", 11 * MIB, seq=91))
    ctx = s3.context()
    ids = ingest_volume(ctx, vol)
    drain(Archiver(ctx))
    recovery = envelope.Keyring(recovery=kek.load_recovery_private(recovery_key))
    objects = _objects(s3, ctx)
    assert sorted(objects) == sorted(ids)
    for rid, (row, bucket, key, version, client) in objects.items():
        got = client.get_object(Bucket=bucket, Key=key, VersionId=version)
        body = got["Body"].read()
        assert envelope.is_envelope(body)
        assert got["Metadata"]["encryption"] == "client"
        assert got["Metadata"]["sha256"] == row["sha256"]
        assert got["ObjectLockMode"] == "COMPLIANCE"  # Object Lock unchanged
        clip = (vol / row["source_path"]).read_bytes()
        for at in (0, len(clip) // 2, len(clip) - 64):
            assert clip[at : at + 48] not in body
        dump = tmp_path / f"{rid}.obj"
        dump.write_bytes(body)
        assert not ffprobe_finds_media(dump), f"ffprobe read the archived object of {rid}"
        # The agency's recovery private key alone (no station key) opens it.
        stream = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"]
        h = hashlib.sha256()
        reader = envstream.plain_reader(stream, recovery, key)
        while piece := reader.read(1 << 20):
            h.update(piece)
        assert h.hexdigest() == row["sha256"]
        size = ctx.ledger.one("SELECT size FROM archive_objects WHERE recording_id=?", (rid,))
        assert size is not None and size["size"] == len(body)
    # The ledger records how: custody names the mode and the key ids, so does the sidecar.
    enc = _archived_encryption(ctx)
    rid0 = envelope.recovery_id(kek.load_recovery_private(recovery_key).public_key()).hex()
    assert len(enc) == 3 and {e["mode"] for e in enc} == {"client"}
    assert {e["recovery_key"] for e in enc} == {rid0}
    # Read-back, audit, the release check, verify and export go through the envelope.
    arch = Archiver(ctx)
    assert all(arch.audit(rid) for rid in ids)
    arch.maintain(force=True)
    for rid, (row, _, key, _, _) in objects.items():
        size = ctx.ledger.one("SELECT size FROM recordings WHERE id=?", (rid,))["size"]
        arch.store.check(row["archive_ref"], row["sha256"], size)  # raises on any mismatch
        sidecar = json.loads(arch.store.read_document(arch.store.sidecar_relkey(key, rid)))
        assert sidecar["object"]["encryption"]["mode"] == "client"
        assert sidecar["object"]["encryption"]["recovery_key"] == rid0
    _drop_spool(s3.station, ctx)
    out = s3.station.cli("verify", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["recordings_checked"] == 3
    dest = tmp_path / "export"
    s3.station.cli("export", *ids, "--to", str(dest), "--reason", "复议", "--operator", "OP1",
                   check=True)  # fmt: skip
    got_files = sorted(p.read_bytes() for p in dest.iterdir() if p.name.startswith(tuple(ids)))
    assert got_files == sorted(c.read_bytes() for c in clips)
    pinned = tmp_path / "station.pub"
    pinned.write_bytes((s3.station.data_dir / "keys" / "station.ed25519.pub").read_bytes())
    proc = s3.station.cli("verify-archive", "--pubkey", str(pinned), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_flipped_byte_in_a_client_object_fails_verify_naming_it(s3_station, bodycam, tmp_path):  # type: ignore[no-untyped-def]
    raw, _ = _keys(tmp_path)
    # A bucket without Object Lock, so the object can be overwritten in place (an attacker
    # with the store's credentials; with Object Lock the version cannot change at all).
    s3 = s3_station(lock=False, object_lock=False, encryption="client", raw=raw)
    vol, _ = bodycam(serial="ZFY1921", clips=2, seconds=1.0)
    ctx = s3.context()
    ids = ingest_volume(ctx, vol)
    drain(Archiver(ctx))
    objects = _objects(s3, ctx)
    victim = ids[0]
    _, bucket, key, version, client = objects[victim]
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[envelope.HEADER_SIZE + 500] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    assert Archiver(ctx).audit(victim) is False  # the audit records a violation
    _drop_spool(s3.station, ctx)
    out = s3.station.cli("verify", "--json")
    assert out.returncode != 0
    problems = json.loads(out.stdout)["problems"]
    named = [p for p in problems if p["subject"] == victim]
    assert named and "chunk 0" in named[0]["message"], problems
    assert not [p for p in problems if p["subject"] == ids[1]]


def test_server_encryption_is_requested_and_what_was_used_recorded(
    s3_station, seaweed, bodycam, caplog
):  # type: ignore[no-untyped-def]
    """archive.encryption = "server" (the default) asks for SSE-S3 on the put and on the
    multipart create; what the store did is what the ledger records. SeaweedFS 4.48 refuses
    SSE-S3 (InternalError): the same upload goes without it, with one warning, and SSE is not
    asked for again."""
    proxy = CountingProxy(seaweed.s3)
    try:
        s3 = s3_station(endpoint=proxy.url, part_size_bytes=5 * MIB,
                        multipart_threshold_bytes=5 * MIB, max_attempts=1)  # fmt: skip
        vol, _ = bodycam(serial="ZFY1922", clips=2, seconds=1.0)
        write_big_clip(vol, "ZFY1922", "100001", 11 * MIB, seq=92)
        ctx = s3.context()
        ids = ingest_volume(ctx, vol)
        drain(Archiver(ctx))
    finally:
        proxy.close()
    writes = [r for r in proxy.requests if r.method in ("PUT", "POST") and not r.is_upload_part
              and "/_" not in r.path and not r.path.endswith(".json")]  # fmt: skip
    asked = [r for r in writes if r.headers.get("x-amz-server-side-encryption") == "AES256"]
    assert asked, "no upload asked for server-side encryption"
    refused = all(r.status >= 400 for r in asked)
    rows = {r["recording_id"]: json.loads(r["payload"])["encryption"] for r in ctx.ledger.query(
        "SELECT recording_id, payload FROM custody WHERE type='recording.archived'")}  # fmt: skip
    assert sorted(rows) == sorted(ids)
    client = s3.server.client()
    for rid, (row, bucket, key, version, _) in _objects(s3, ctx).items():
        head = client.head_object(Bucket=bucket, Key=key, VersionId=version)
        body = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == row["sha256"]  # plaintext for the platform
        expected = "sse-s3" if head.get("ServerSideEncryption") == "AES256" else "none"
        assert rows[rid]["mode"] == expected and rows[rid]["requested"] == "sse-s3"
        assert rows[rid].get("refused", False) is refused
    if refused:  # asked once, then never again; warned once, naming the setting
        assert len({r.path for r in asked}) == 1
        probe = [r for r in proxy.requests if "/_probe/" in r.path]  # refusal, not an outage
        assert [(r.method, "x-amz-server-side-encryption" in r.headers, r.status < 400)
                for r in probe if r.method == "POST"][-1] == ("POST", False, True)  # fmt: skip
        assert any(r.method == "POST" and "x-amz-server-side-encryption" in r.headers
                   for r in probe)  # fmt: skip
        assert probe[-1].method == "DELETE"  # the probe upload is aborted: nothing stored
        warned = [r for r in caplog.records if "archive.encryption" in r.getMessage()]
        assert len(warned) == 1


def test_rotate_and_recover_keep_client_objects_readable(s3_station, bodycam, tmp_path):  # type: ignore[no-untyped-def]
    """Locked objects keep the slots they were uploaded with; rotation and recovery re-wrap
    their data keys into the ledger, so verify still reads the archive with the new key."""
    raw, recovery_key = _keys(tmp_path)
    s3 = s3_station(encryption="client", raw=raw)
    vol, _ = bodycam(serial="ZFY1923", clips=2, seconds=1.0)
    ctx = s3.context()
    ids = ingest_volume(ctx, vol)
    drain(Archiver(ctx))
    _drop_spool(s3.station, ctx)
    key_file = tmp_path / "etc-keys" / "encryption.key"
    first = kek.load_ring(key_file)
    out = s3.station.cli("keys", "encryption", "rotate")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 archive objects" in out.stdout
    ring = kek.load_ring(key_file)
    assert len(ring) == 1 and ring != first  # the old key is gone from the key file
    out = s3.station.cli("verify", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["recordings_checked"] == len(ids)
    key_file.unlink()  # the station key is lost
    out = s3.station.cli("verify", "--json")
    assert out.returncode != 0
    out = s3.station.cli("keys", "encryption", "recover", "--recovery-key", str(recovery_key))
    assert out.returncode == 0, out.stdout + out.stderr
    out = s3.station.cli("verify", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    events = ctx.ledger.query(
        "SELECT type, payload FROM custody WHERE type IN ('crypto.key_rotated','crypto.recovered')"
    )
    assert [e["type"] for e in events] == ["crypto.key_rotated", "crypto.recovered"]
    assert all(json.loads(e["payload"])["archive_objects"] == 2 for e in events)


def test_client_multipart_upload_resumes_with_the_same_ciphertext(s3_station, bodycam, tmp_path):  # type: ignore[no-untyped-def]
    """Stopped after two parts, the upload resumes (same UploadId, only the missing parts
    sent): the envelope's bytes are the same on both sides of the stop."""
    raw, recovery_key = _keys(tmp_path)
    s3 = s3_station(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB,
                    parallel_parts=1, encryption="client", raw=raw)  # fmt: skip
    vol, _ = bodycam(serial="ZFY1924", clips=1, seconds=1.0)
    big = write_big_clip(vol, "ZFY1924", "100001", 4 * 5 * MIB - 777, seq=93)
    ctx = s3.context()
    ingest_volume(ctx, vol)
    sent: list[tuple[str, int]] = []

    def count(params, **_):  # type: ignore[no-untyped-def]
        sent.append((params["UploadId"], params["PartNumber"]))
        if len(sent) == 2 and not ctx.stop.is_set():
            ctx.stop.set()  # as a shutdown does: the upload stays resumable

    first = Archiver(ctx)
    first.store.client.meta.events.register("provide-client-params.s3.UploadPart", count)  # type: ignore[attr-defined]
    (row,) = [r for r in first.pending(10) if r["size"] > MIB]
    rid = row["id"]
    try:
        first.archive_one(row)
    except InterruptedError:
        pass
    assert ctx.stop.is_set() and len(sent) == 2
    (upload,) = ctx.ledger.query("SELECT * FROM archive_uploads WHERE state='open'")
    assert upload["size"] == envelope.ciphertext_size(big.stat().st_size)  # the envelope's
    ctx.stop.clear()
    second = Archiver(ctx)
    second.store.client.meta.events.register("provide-client-params.s3.UploadPart", count)  # type: ignore[attr-defined]
    drain(second)
    resent = sent[2:]
    assert {u for u, _ in resent} == {upload["upload_id"]}
    assert sorted(n for _, n in resent) == [3, 4, 5]  # 5 parts of ciphertext, 2 kept
    (_, bucket, key, version, client) = _objects(s3, ctx)[rid]
    stream = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"]
    recovery = envelope.Keyring(recovery=kek.load_recovery_private(recovery_key))
    reader = envstream.plain_reader(stream, recovery, key)
    h = hashlib.sha256()
    while piece := reader.read(1 << 20):
        h.update(piece)
    assert h.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()


def test_check_config_refuses_client_encryption_without_the_recovery_key(s3_station, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "etc-keys" / "encryption.key"
    kek.write_ring(path, [os.urandom(32)])
    s3 = s3_station(encryption="client", raw=f'[crypto]\nkey_file = "{path}"\n')
    out = s3.station.cli("check-config")
    assert out.returncode != 0
    assert "archive.encryption" in out.stdout + out.stderr
    assert "crypto.recovery_public_key" in out.stdout + out.stderr
