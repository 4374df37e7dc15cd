"""A recording copied again must match its first copy (issue 12, "evidence you can defend").

A hashed recording whose spool copy is gone is copied again from the recorder
(tests/faults/test_spool_recovery.py). The re-copy is compared with the SHA-256 the custody
chain recorded for the first copy: the same bytes go on as before; different bytes never
replace the recorded hash, are kept under `<spool>/.recopied/`, hold the recording in
`quarantined` with an `integrity.violation` naming both hashes, and keep the recorder's file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.actions import quarantine
from agent.ingest.ingestor import Ingestor
from agent.retention import wipegate
from faults.harness import sha256_of
from fixtures.station import Station

RELEASE = 'release_after = "spooled"'


def _volume(st: Station, serial: str) -> tuple[Path, Path]:
    vol = st.mount_root / serial
    (vol / "DCIM").mkdir(parents=True)
    (vol / "DEVINFO.TXT").write_text(f"vendor=ZFY\nserial={serial}\n", encoding="utf-8")
    clip = vol / "DCIM" / f"{serial}_100001_20260921080000_0001.MP4"
    clip.write_bytes(os.urandom(9000))
    os.utime(clip, (1_790_000_000, 1_790_000_000))
    return vol, clip


def _ingest_then_lose_copy(st: Station, serial: str):  # type: ignore[no-untyped-def]
    """Ingest one clip, delete its spool copy, run recovery; returns (ctx, ingestor, device,
    the row as first hashed)."""
    vol, _ = _volume(st, serial)
    ctx = st.context()
    ing = Ingestor(ctx)
    report = ing.register_volume(vol)
    row = ing.claim([report.device_id], retry_seconds=0)
    assert row is not None and ing.ingest(row).state == "spooled"
    first = ctx.ledger.one("SELECT * FROM recordings WHERE id=?", (row["id"],))
    assert first is not None
    copy = st.data_dir / "spool" / first["spool_path"]
    os.chmod(copy, 0o600)
    os.unlink(copy)
    return ctx, ing, report.device_id, first


def test_recopy_of_the_same_bytes_keeps_the_hash_and_verify_passes(make_station) -> None:  # type: ignore[no-untyped-def]
    st = make_station(RELEASE)
    ctx, ing, device, first = _ingest_then_lose_copy(st, "ZFY0711")
    try:
        ing.recover()
        row = ing.claim([device], retry_seconds=0)
        assert row is not None and row["id"] == first["id"]
        out = ing.ingest(row)
        assert (out.state, out.sha256) == ("spooled", first["sha256"])
        again = ctx.ledger.one("SELECT * FROM recordings WHERE id=?", (first["id"],))
        assert again is not None and again["sha256"] == first["sha256"]
        assert sha256_of(st.data_dir / "spool" / again["spool_path"]) == first["sha256"]
        (ev,) = ctx.ledger.query(
            "SELECT payload FROM custody WHERE recording_id=? AND type='recording.spooled'"
            " ORDER BY seq DESC LIMIT 1",
            (first["id"],),
        )
        assert json.loads(ev["payload"])["recopy"] == {"matched": first["sha256"]}
    finally:
        ctx.close()
    verify = st.cli("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not (st.data_dir / "spool" / ".recopied").exists()


def test_recopy_of_changed_bytes_is_flagged_and_both_copies_kept(make_station) -> None:  # type: ignore[no-untyped-def]
    st = make_station(RELEASE)
    ctx, ing, device, first = _ingest_then_lose_copy(st, "ZFY0712")
    source = st.mount_root / "ZFY0712" / "DCIM" / "ZFY0712_100001_20260921080000_0001.MP4"
    try:
        # One byte changed on the recorder, size and mtime put back: only a hash can tell.
        data = bytearray(source.read_bytes())
        data[100] ^= 0xFF
        source.write_bytes(bytes(data))
        os.utime(source, (1_790_000_000, 1_790_000_000))
        changed = sha256_of(source)
        assert changed != first["sha256"]
        ing.recover()
        row = ing.claim([device], retry_seconds=0)
        assert row is not None
        out = ing.ingest(row)
        assert (out.state, out.reason) == ("quarantined", "recopy_mismatch")
        after = ctx.ledger.one("SELECT * FROM recordings WHERE id=?", (first["id"],))
        assert after is not None
        assert (after["state"], after["sha256"]) == ("quarantined", first["sha256"])
        (kept,) = (st.data_dir / "spool" / ".recopied").iterdir()
        assert kept.name.startswith(f"{first['id']}-{changed[:16]}")
        assert sha256_of(kept) == changed  # the new bytes, kept under their own name
        assert sha256_of(source) == changed  # and the recorder's file, still there
        (ev,) = ctx.ledger.query(
            "SELECT payload FROM custody WHERE recording_id=? AND type='integrity.violation'"
            " AND payload LIKE '%recopy%'",
            (first["id"],),
        )
        doc = json.loads(ev["payload"])
        assert (doc["recorded_sha256"], doc["recopied_sha256"]) == (first["sha256"], changed)
        assert doc["kept_as"] == f".recopied/{kept.name}"
        outbox = ctx.ledger.query(
            "SELECT payload FROM outbox WHERE type='integrity.violation' AND payload LIKE ?",
            ("%recopy_mismatch%",),
        )
        assert len(outbox) == 1 and changed in outbox[0]["payload"]
        # The wipe gate keeps the recorder's file, and no `accept` can move it on.
        decision = wipegate.release(ctx.cfg, ctx.ledger, first["id"])
        assert not decision.allowed and "re-copy" in decision.reason
        (res,) = quarantine.decide(ctx, [first["id"]], "accept", "root", "looks fine")
        assert not res.ok and "differs" in res.message
        assert source.exists()
        # Recovery again: the row has no spool copy to miss, nothing is sent back or moved.
        ing.recover()
        still = ctx.ledger.one("SELECT state, sha256 FROM recordings WHERE id=?", (first["id"],))
        assert still is not None and tuple(still) == ("quarantined", first["sha256"])
        assert kept.exists()
    finally:
        ctx.close()
    status = json.loads(st.cli("status", "--json").stdout)
    assert status["spool_recopied"] == [f".recopied/{kept.name}"]
    (shown,) = [r for r in status["recordings"] if r["id"] == first["id"]]
    assert shown["state"] == "quarantined" and changed in shown["reason"]
    verify = st.cli("verify", "--json")
    assert verify.returncode == 1
    problems = [p for p in json.loads(verify.stdout)["problems"] if p["kind"] == "recopy"]
    assert len(problems) == 1 and first["sha256"] in problems[0]["message"]
    assert changed in problems[0]["message"]
