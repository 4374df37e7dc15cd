"""国密 on the archived custody documents (issue 19): under crypto.suite = "sm" the write-once
anchors carry the checkpoint's SM2 co-signature and the custody segments each event's SM3
chain value, against a real SeaweedFS; the OpenSSL command line verifies the archived SM2
signature and recomputes the archived SM3 values; a tampered SM2 signature or SM3 value in
the archive fails `verify` / `verify-archive` naming it; a station that never used "sm" ships
what it shipped before, and segments without SM3 values stay valid."""

from __future__ import annotations

import json
from pathlib import Path

from test_sm_custody import _canonical, _openssl_sm2_verifies, _openssl_sm3

from agent.archive.archiver import Archiver
from agent.ledger import custody
from fixtures.archive import drain, ingest_volume
from fixtures.station import ledger_rows

PLAIN_ANCHOR = {"schema", "station", "statement", "signature", "key_fingerprint"}


def _anchored(ctx, sm2) -> None:  # type: ignore[no-untyped-def]
    """Two checkpoints (one mid-way, one at the head), all shipped to the archive."""
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id, sm2)
    arch = Archiver(ctx)
    drain(arch)
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id, sm2)
    arch.maintain(force=True)


def _pinned(station, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    pinned = tmp_path / "register" / "station.pub"
    pinned.parent.mkdir(exist_ok=True)
    pinned.write_bytes((station.data_dir / "keys" / "station.ed25519.pub").read_bytes())
    return pinned


def _docs(client, bucket: str, part: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    listed = client.list_objects_v2(Bucket=bucket, Prefix="evidence/_custody/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []) if f"/{part}/" in o["Key"])
    return {k: json.loads(client.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}


def _put(client, bucket: str, key: str, doc: dict) -> None:  # type: ignore[no-untyped-def]
    """Overwrite an archived document in place (a bucket without Object Lock: someone with
    the store's credentials; with Object Lock a second version is flagged instead)."""
    body = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    client.put_object(Bucket=bucket, Key=key, Body=body)


def _archive_check(station, pinned: Path) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    proc = station.cli("verify-archive", "--pubkey", str(pinned), "--json")
    return proc.returncode, json.loads(proc.stdout)


def test_sm_anchors_and_segments_in_seaweedfs(s3_station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station(lock=False, object_lock=False, raw='[crypto]\nsuite = "sm"\nencrypt = "off"\n')
    ctx = s3.context()
    vol, _ = bodycam(serial="ZFY1931", clips=1, seconds=0.5)
    ingest_volume(ctx, vol)
    _anchored(ctx, ctx.sm2)
    client, bucket = s3.server.client(), s3.bucket

    anchors = _docs(client, bucket, "checkpoints")
    assert len(anchors) >= 2
    for key, doc in anchors.items():  # every anchor: SM2 by the key its statement names
        assert doc["sm2_signature"] and doc["sm2_public_key"], key
        assert _openssl_sm2_verifies(doc["statement"], doc["sm2_signature"],
                                     doc["sm2_public_key"], tmp_path), key  # fmt: skip
    ledger_sm2 = {r["statement"]: r["sm2_signature"] for r in ledger_rows(
        s3.station, "SELECT statement, sm2_signature FROM checkpoints")}  # fmt: skip
    assert all(ledger_sm2[d["statement"]] == d["sm2_signature"] for d in anchors.values())

    segs = _docs(client, bucket, "segments")
    events = [e for d in segs.values() for e in d["events"]]
    assert events and events[0]["seq"] == 1
    prev = "0" * 64  # a fresh "sm" station: the SM3 chain starts at event 1
    for e in events:  # the archived SM3 values, recomputed by OpenSSL
        assert e["sm3"] == _openssl_sm3(_canonical(e, prev)), e["seq"]
        prev = e["sm3"]
    last_seg = segs[max(segs)]
    assert json.loads(last_seg["statement"])["last_sm3"] == last_seg["events"][-1]["sm3"]

    pinned = _pinned(s3.station, tmp_path)
    rc, report = _archive_check(s3.station, pinned)
    assert rc == 0, report
    assert report["sm3_events"] == len(events) and report["sm2_anchors"] == len(anchors)
    assert s3.station.cli("verify").returncode == 0

    # A tampered SM2 signature in an archived anchor (Ed25519 and the chain untouched).
    victim = min(anchors)
    doc = dict(anchors[victim])
    sig = doc["sm2_signature"]
    doc["sm2_signature"] = sig[:-2] + ("00" if sig[-2:] != "00" else "01")
    _put(client, bucket, victim, doc)
    relkey = victim.removeprefix("evidence/")
    bad = s3.station.cli("verify", "--json")
    assert bad.returncode != 0
    named = [p for p in json.loads(bad.stdout)["problems"] if p["subject"] == relkey]
    assert named and "SM2 signature does not verify" in named[0]["message"], bad.stdout
    rc, report = _archive_check(s3.station, pinned)
    assert rc == 1
    assert {"subject": relkey, "message": "SM2 signature does not verify with the station SM2 "
            "key"} in report["problems"]  # fmt: skip
    _put(client, bucket, victim, anchors[victim])  # put back

    # A tampered SM3 value in an archived segment (the SHA-256 chain untouched).
    seg_key = min(segs)
    seg = json.loads(json.dumps(segs[seg_key]))
    seq = seg["events"][1]["seq"]
    seg["events"][1]["sm3"] = "1" * 64
    _put(client, bucket, seg_key, seg)
    proc = s3.station.cli("verify-archive", "--pubkey", str(pinned))
    assert proc.returncode == 1
    assert f"FAIL event {seq}: archived event {seq} (" in proc.stdout
    assert "SM3 mismatch" in proc.stdout
    assert f"SM3 chain: {len(events)} archived events checked; SM2: {len(anchors)} anchor" in (
        proc.stdout
    )


def test_intl_station_ships_as_before_then_switches_to_sm(make_station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A station that never used "sm": anchors without SM2 fields, segments without `sm3`
    and statements without `last_sm3`, as before. After the switch to "sm" the SM3 chain is
    checked from the switch event on; an `sm3` key stripped from an archived event is named."""
    st = make_station('[crypto]\nencrypt = "off"\n')
    ctx = st.context()
    vol, _ = bodycam(serial="ZFY1932", clips=1, seconds=0.5)
    ingest_volume(ctx, vol)
    _anchored(ctx, None)
    ctx.close()
    custody_dir = st.data_dir / "archive" / "_docs" / "_custody"
    anchors = [json.loads(p.read_bytes()) for p in custody_dir.glob("*/checkpoints/*/v*")]
    assert anchors and all(set(a) == PLAIN_ANCHOR for a in anchors)
    for path in custody_dir.glob("*/segments/*/v*"):
        seg = json.loads(path.read_bytes())
        assert "last_sm3" not in json.loads(seg["statement"])
        assert not [e for e in seg["events"] if "sm3" in e]
    pinned = _pinned(st, tmp_path)
    rc, report = _archive_check(st, pinned)
    assert rc == 0 and report["sm3_events"] == 0 and report["sm2_anchors"] == 0, report

    st.config_path.write_text(st.config_path.read_text().replace("[crypto]\n",
                              '[crypto]\nsuite = "sm"\n'))  # fmt: skip
    ctx = st.context()
    vol2, _ = bodycam(serial="ZFY1933", clips=1, seconds=0.5)
    ingest_volume(ctx, vol2)
    _anchored(ctx, ctx.sm2)
    ctx.close()
    rc, report = _archive_check(st, pinned)
    switch = ledger_rows(st, "SELECT seq FROM custody WHERE type = 'crypto.suite_changed'")
    head = ledger_rows(st, "SELECT MAX(head_seq) AS h FROM checkpoints")[0]["h"]
    assert rc == 0, report
    assert report["sm3_events"] == head - switch[0]["seq"] + 1 and report["sm2_anchors"] >= 1

    path = sorted(custody_dir.glob("*/segments/*/v*"))[-1]
    seg = json.loads(path.read_bytes())
    victim = seg["events"][0]
    assert victim["sm3"]
    del victim["sm3"]
    path.chmod(0o644)
    path.write_text(json.dumps(seg, ensure_ascii=False, indent=2, sort_keys=True))
    rc, report = _archive_check(st, pinned)
    assert rc == 1
    named = [p for p in report["problems"] if p["subject"] == f"event {victim['seq']}"]
    assert named and "has no sm3 key" in named[0]["message"], report


def test_segments_from_before_sm3_stay_valid(make_station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A station already under "sm" whose first segment was shipped by an earlier version
    (no `sm3` keys, no `last_sm3`): verify-archive passes and checks the SM3 chain from the
    next segment on."""
    from agent.archive import segments

    st = make_station('[crypto]\nsuite = "sm"\nencrypt = "off"\n')
    ctx = st.context()
    vol, _ = bodycam(serial="ZFY1935", clips=1, seconds=0.5)
    ingest_volume(ctx, vol)
    _anchored(ctx, ctx.sm2)
    paths = sorted((st.data_dir / "archive" / "_docs" / "_custody").glob("*/segments/*/v*"))
    assert len(paths) >= 2
    old = json.loads(paths[0].read_bytes())
    for e in old["events"]:
        del e["sm3"]
    last = old["events"][-1]
    old["statement"] = segments.statement(ctx.station_id, old["first"], old["last"], last["hash"])
    old["signature"] = ctx.key.sign(old["statement"].encode("utf-8")).hex()
    paths[0].chmod(0o644)
    paths[0].write_text(json.dumps(old, ensure_ascii=False, indent=2, sort_keys=True))
    ctx.close()
    rc, report = _archive_check(st, _pinned(st, tmp_path))
    later = sum(len(json.loads(p.read_bytes())["events"]) for p in paths[1:])
    assert rc == 0, report
    assert report["sm3_events"] == later - 1  # the first after the old segment: taken as given


def test_anchor_cosigned_with_another_sm2_key_fails(make_station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An SM2 signature that verifies, but by a key that is not the station's enrolled SM2
    key (the one its Ed25519-signed statement names), fails both checks naming the anchor."""
    from agent.core import sm2sig

    st = make_station('[crypto]\nsuite = "sm"\nencrypt = "off"\n')
    ctx = st.context()
    vol, _ = bodycam(serial="ZFY1934", clips=1, seconds=0.5)
    ingest_volume(ctx, vol)
    _anchored(ctx, ctx.sm2)
    ctx.close()
    folder = st.data_dir / "archive" / "_docs"
    path = sorted(folder.glob("_custody/*/checkpoints/*/v*"))[-1]
    doc = json.loads(path.read_bytes())
    sk, pk = sm2sig.generate()
    doc["sm2_public_key"] = sm2sig.public_pem(pk)
    doc["sm2_signature"] = sm2sig.sign(sk, pk, doc["statement"].encode("utf-8")).hex()
    assert _openssl_sm2_verifies(doc["statement"], doc["sm2_signature"],
                                 doc["sm2_public_key"], tmp_path)  # fmt: skip
    path.chmod(0o644)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True))
    relkey = str(path.parent.relative_to(folder))
    rc, report = _archive_check(st, _pinned(st, tmp_path))
    assert rc == 1
    (problem,) = [p for p in report["problems"] if p["subject"] == relkey]
    assert "not the station SM2 key the statement names" in problem["message"]
    out = st.cli("verify")
    assert out.returncode != 0
    assert f"{relkey}: the SM2 public key is not the station SM2 key" in out.stdout, out.stdout
