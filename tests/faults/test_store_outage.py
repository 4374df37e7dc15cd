"""S3 store outages under the kill harness: SeaweedFS stops and starts at seeded moments while
the agent is SIGKILLed (also after an upload part, before and after completing a multipart
upload). No evidence is lost or wrongly marked, nothing is released that the store does not
verifiably hold, and the backlog drains once the store is back."""

from __future__ import annotations

import hashlib
import random

from agent.archive.s3.store import parse_ref
from faults.harness import KillRunner, Recorder, check_invariants, seed_from_env
from fixtures.seaweed import s3_config
from fixtures.station import ledger_rows

MIB = 1 << 20
UPLOAD_POINTS = ("upload.after_part", "upload.before_complete", "upload.after_complete")


def test_kills_and_store_outages_lose_no_evidence(make_station, seaweed_factory, tmp_path):
    seed = seed_from_env()
    print(f"store outage seed {seed} (replay: EVIDENCE_FAULT_SEED={seed})")
    server = seaweed_factory()
    bucket = server.make_bucket(lock=True)
    archive = s3_config(
        server.endpoint,
        bucket,
        tmp_path / "s3-credentials",
        part_size_bytes=5 * MIB,
        multipart_threshold_bytes=5 * MIB,
    )
    st = make_station('release_after = "archived"\nchunk_bytes = 262144\n' + archive)
    rng = random.Random(seed)
    recorders = [Recorder(st.mount_root / f"REC{i}", f"S3K{i:04d}") for i in range(2)]
    for rec in recorders:
        rec.record(rng, 2)
    recorders[0].record(rng, 1, lo=11 * MIB, hi=11 * MIB)  # three parts: multipart upload

    def weather(r: random.Random) -> str | None:
        if r.random() < 0.15:  # big clips now and then keep the multipart path busy
            recorders[r.randrange(2)].record(r, 1, lo=6 * MIB, hi=12 * MIB)
        if server.proc is not None and r.random() < 0.2:
            server.stop()
            return "store down"
        if server.proc is None and r.random() < 0.5:
            server.start()
            return "store up"
        return None

    runner = KillRunner(
        st.config_path, recorders, seed, extra_points=UPLOAD_POINTS, before_round=weather
    )
    runner.run(15)
    print(runner.summary())
    if server.proc is None:
        server.start()
    runner.settle(timeout=120)
    problems = runner.violations + check_invariants(st.config_path, recorders, final=True)
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)

    # Every released recording is in the bucket, under retention, with the content hashed.
    client = server.client()
    rows = ledger_rows(st, "SELECT sha256, archive_ref FROM recordings WHERE state='released'")
    assert len(rows) == sum(len(r.manifest) for r in recorders)
    for r in rows:
        b, k, v = parse_ref(r["archive_ref"])
        obj = client.get_object(Bucket=b, Key=k, VersionId=v)
        assert hashlib.sha256(obj["Body"].read()).hexdigest() == r["sha256"]
        assert obj.get("ObjectLockMode") == "COMPLIANCE"
