"""A sealed interview segment that fails authentication in its volume (issue 19).

Ingest reads a closed interview segment through its envelope (agent.core.copier
`source_keys`). A byte flipped in one chunk is an integrity finding, not a short read: the
recording is held (`quarantined`), one `integrity.violation` names the segment and the chunk,
the scheduler never claims it again (no retry storm), the wipe gate keeps the segment and
`accept` cannot move it on. An intact segment of the same volume is ingested as usual.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from agent.actions import quarantine
from agent.core import envelope
from agent.ingest.ingestor import Ingestor
from agent.retention import wipegate
from agent.station import kek
from fixtures.station import Station

MTIME = 1_790_000_000


def _segment(vol: Path, name: str, to: envelope.Recipients, plain: bytes) -> Path:
    path = vol / "DCIM" / name
    path.write_bytes(envelope.seal_bytes(to, plain))
    os.utime(path, (MTIME, MTIME))
    return path


def test_a_flipped_chunk_in_a_sealed_segment_is_held_with_one_violation(make_station, tmp_path):  # type: ignore[no-untyped-def]
    key = tmp_path / "etc-keys" / "encryption.key"
    ring = [os.urandom(32)]
    kek.write_ring(key, ring)
    st: Station = make_station(
        f'release_after = "spooled"\n[crypto]\nencrypt = "required"\nkey_file = "{key}"\n'
    )
    serial = "ZFY0911"
    vol = st.mount_root / serial
    (vol / "DCIM").mkdir(parents=True)
    (vol / "DEVINFO.TXT").write_text(f"vendor=ZFY\nserial={serial}\n", encoding="utf-8")
    to = envelope.Recipients(ring[0])
    good_plain = os.urandom(envelope.CHUNK_SIZE + 500)
    good = _segment(vol, f"{serial}_100001_20260921080000_0001.MP4", to, good_plain)
    bad = _segment(vol, f"{serial}_100001_20260921081000_0002.MP4", to,
                   os.urandom(3 * envelope.CHUNK_SIZE))  # fmt: skip
    raw = bytearray(bad.read_bytes())
    raw[envelope.HEADER_SIZE + (envelope.CHUNK_SIZE + envelope.TAG) + 10] ^= 0x01  # chunk 1
    bad.write_bytes(bytes(raw))
    os.utime(bad, (MTIME, MTIME))
    bad_sha = hashlib.sha256(raw).hexdigest()

    ctx = st.context()
    try:
        ing = Ingestor(ctx)
        device = ing.register_volume(vol).device_id
        with ctx.ledger.tx() as conn:  # what agent.interview.segments registers its cameras as
            conn.execute("UPDATE devices SET vendor = 'interview' WHERE id = ?", (device,))
        outcomes = {}
        for _ in range(2):  # bounded: a source retried forever must fail here, not hang
            row = ing.claim([device], retry_seconds=0)
            assert row is not None
            outcomes[str(row["source_path"])] = ing.ingest(row)
        assert outcomes[f"DCIM/{good.name}"].state == "spooled"
        assert outcomes[f"DCIM/{good.name}"].sha256 == hashlib.sha256(good_plain).hexdigest()
        held = outcomes[f"DCIM/{bad.name}"]
        assert (held.state, held.reason) == ("quarantined", "sealed_source_auth")
        rid = held.recording_id

        # No retry loop: even with retry_seconds=0 nothing is claimed again for a few seconds.
        attempts, end = 0, time.monotonic() + 3
        while time.monotonic() < end:
            if ing.claim([device], retry_seconds=0) is not None:
                attempts += 1
            time.sleep(0.1)
        assert attempts == 0
        row = ctx.ledger.one("SELECT state, sha256, reason FROM recordings WHERE id=?", (rid,))
        assert row is not None and (row["state"], row["sha256"]) == ("quarantined", None)
        assert f"DCIM/{bad.name}" in row["reason"] and "chunk 1" in row["reason"]
        assert not ctx.ledger.query(
            "SELECT seq FROM custody WHERE recording_id=? AND type='recording.failed'", (rid,)
        )
        (ev,) = ctx.ledger.query(
            "SELECT payload FROM custody WHERE recording_id=? AND type='integrity.violation'",
            (rid,),
        )
        doc = json.loads(ev["payload"])
        assert (doc["check"], doc["segment"], doc["chunk"]) == (
            "sealed_source", f"DCIM/{bad.name}", 1)  # fmt: skip
        assert "chunk 1 of 3 fails authentication" in doc["error"]
        (out,) = ctx.ledger.query("SELECT payload FROM outbox WHERE type='integrity.violation'")
        mqtt = json.loads(out["payload"])
        assert (mqtt["recording"], mqtt["reason"], mqtt["chunk"]) == (rid, "sealed_source_auth", 1)

        # The segment stays in its volume: the wipe gate keeps it, `accept` cannot release it.
        assert not wipegate.release(ctx.cfg, ctx.ledger, rid).allowed
        (res,) = quarantine.decide(ctx, [rid], "accept", "root", "looks fine")
        assert not res.ok and "no verified copy" in res.message
        assert not wipegate.release(ctx.cfg, ctx.ledger, rid).allowed
        assert hashlib.sha256(bad.read_bytes()).hexdigest() == bad_sha
        assert not list((st.data_dir / "spool").rglob(f"*{rid}*"))  # no partial copy kept
    finally:
        ctx.close()
    verify = st.cli("verify", "--json")
    assert verify.returncode == 1
    (problem,) = json.loads(verify.stdout)["problems"]
    assert problem["kind"] == "sealed_source" and problem["subject"] == rid
    assert f"DCIM/{bad.name}" in problem["message"] and "chunk 1" in problem["message"]
