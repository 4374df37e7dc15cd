"""`verify-archive` follows key rotations (issues #12/#19 follow-up): against a real SeaweedFS,
a station that rotates its key twice, with segments and anchors archived before and after
each rotation, passes `verify-archive --pubkey <enrolment key>` (the hand-overs are read from
the archived segments themselves); a forged hand-over in an archived segment fails, naming
its event, and nothing signed after it is trusted."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.archive.archiver import Archiver
from agent.ledger import custody, handover, stationkey
from fixtures.archive import drain, ingest_volume


def _anchored(ctx) -> None:  # type: ignore[no-untyped-def]
    """Two checkpoints (one mid-way, one at the head), segments and anchors all shipped."""
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id, ctx.sm2)
    arch = Archiver(ctx)
    drain(arch)
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id, ctx.sm2)
    arch.maintain(force=True)


def _docs(client, bucket: str, part: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    listed = client.list_objects_v2(Bucket=bucket, Prefix="evidence/_custody/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []) if f"/{part}/" in o["Key"])
    return {k: json.loads(client.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}


def _put(client, bucket: str, key: str, doc: dict) -> None:  # type: ignore[no-untyped-def]
    """Overwrite an archived document in place (a bucket without Object Lock: someone with
    the store's credentials)."""
    body = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    client.put_object(Bucket=bucket, Key=key, Body=body)


def _archive_check(station, pinned: Path) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    proc = station.cli("verify-archive", "--pubkey", str(pinned), "--json")
    return proc.returncode, json.loads(proc.stdout)


def _forged(e: dict, station: str) -> dict:
    """The same hand-over event, but to a key of the forger's, signed by a planted key while
    naming the key in force as the old one."""
    real = json.loads(e["payload"])
    planted, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    new_fp, new_pem = (
        stationkey.fingerprint(new.public_key()),
        handover.public_pem(new.public_key()),
    )
    st = handover.statement(station, real["old"], new_fp, new_pem)
    payload = dict(
        real, new=new_fp, new_public_key=new_pem, signature=planted.sign(st.encode()).hex()
    )
    forged = dict(e, payload=json.dumps(payload, sort_keys=True))
    forged["hash"] = custody.event_hash(
        e["seq"], e["at"], e["type"], e["recording_id"], e["actor"], forged["payload"], e["alg"],
        e["prev_hash"],
    )  # fmt: skip
    return forged


def test_verify_archive_follows_two_rotations_from_the_enrolment_key(
    s3_station, bodycam, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station(lock=False, object_lock=False, raw='[crypto]\nsuite = "sm"\nencrypt = "off"\n')
    station = s3.station
    pinned = tmp_path / "register" / "enrolment.pub"
    pinned.parent.mkdir()
    fps = []
    for n, serial in enumerate(("ZFY1951", "ZFY1952", "ZFY1953")):
        if n:
            station.cli("keys", "rotate", check=True)
        ctx = station.context()
        fps.append(stationkey.fingerprint(ctx.key.public_key()))
        if not n:  # the key as the fleet register holds it since enrolment
            pinned.write_text(handover.public_pem(ctx.key.public_key()))
        vol, _ = bodycam(serial=serial, clips=1, seconds=0.5)
        ingest_volume(ctx, vol)
        _anchored(ctx)  # segments and anchors before the next rotation
    assert len(set(fps)) == 3
    client, bucket = s3.server.client(), s3.bucket
    segs, anchors = _docs(client, bucket, "segments"), _docs(client, bucket, "checkpoints")
    assert {d["key_fingerprint"] for d in segs.values()} == set(fps)  # each key signed some
    assert {d["key_fingerprint"] for d in anchors.values()} == set(fps)
    rotations = [(k, i, e) for k, d in segs.items() for i, e in enumerate(d["events"])
                 if e["type"] == handover.EVENT]  # fmt: skip
    assert len(rotations) == 2

    rc, report = _archive_check(station, pinned)
    assert rc == 0, report["problems"]
    assert report["keys"] == fps
    assert report["anchors_checked"] == len(anchors) >= 6
    assert report["sm2_anchors"] == len(anchors)  # the SM2 co-signatures, after rotations too
    proc = station.cli("verify-archive", "--pubkey", str(pinned))
    assert (
        proc.returncode == 0 and f"keys followed from the pinned key: {fps[0]} -> " in proc.stdout
    )

    # Pinned at the newest key, the history signed before it is not trusted.
    newest = tmp_path / "newest.pub"
    newest.write_text(handover.public_pem(ctx.key.public_key()))
    rc, report = _archive_check(station, newest)
    assert rc == 1 and any("segment signature does not verify" in p["message"]
                           for p in report["problems"])  # fmt: skip

    # The second hand-over replaced by one the key in force never signed.
    seg_key, i, event = rotations[1]
    seq = event["seq"]
    seg = json.loads(json.dumps(segs[seg_key]))
    seg["events"][i] = _forged(event, ctx.station_id)
    _put(client, bucket, seg_key, seg)
    rc, report = _archive_check(station, pinned)
    assert rc == 1
    assert {"subject": f"event {seq}",
            "message": f"key hand-over at event {seq}: not signed by the key in force"} in (
        report["problems"]
    )  # fmt: skip
    assert report["keys"] == fps[:2]  # nothing after the forged hand-over is followed
    named = {p["subject"] for p in report["problems"]}
    assert any(a.removeprefix("evidence/") in named for a in anchors)  # later anchors fail
    _put(client, bucket, seg_key, segs[seg_key])  # put back
    assert _archive_check(station, pinned)[0] == 0
