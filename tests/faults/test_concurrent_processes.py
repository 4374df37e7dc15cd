"""Several agent processes share one ledger and one spool (docs/architecture.md): an
`ingest DIR` started while the daemon copies must not take the daemon's live copy for a crash
leftover."""

from __future__ import annotations

import os
import random

from faults.harness import Recorder, check_invariants, run_agent
from fixtures.station import ledger_rows, wait_for


def test_ingest_cli_during_a_daemon_copy_leaves_the_copy_alone(
    make_station, daemon, faultfs, tmp_path
):
    spool = tmp_path / "spool"
    (tmp_path / "spool-disk").mkdir()
    # The spool reads back slowly, so the daemon sits between rename and ledger commit (in its
    # verifying re-read) long enough for the other process to start.
    fm = faultfs(tmp_path / "spool-disk", spool, kind="spool", throttle_bps=2e6)
    st = make_station(f'release_after = "never"\nspool_dir = "{spool}"')
    big = Recorder(st.mount_root / "CON0001", "CON0001")
    big.record(random.Random(1), 1, lo=4 << 20, hi=4 << 20)
    daemon(st)

    def renamed_not_committed():
        rows = ledger_rows(st, "SELECT id, state FROM recordings")
        copies = [p for p in spool.rglob("*.mp4") if ".tmp" not in p.parts]
        return rows and rows[0]["state"] == "copying" and copies

    wait_for(renamed_not_committed, timeout=30, what="daemon copy renamed, not yet committed")
    other = Recorder(tmp_path / "CON0002", "CON0002")
    other.record(random.Random(2), 2, lo=10_000, hi=10_000)
    out = st.cli("ingest", str(other.volume), "--json")
    assert out.returncode == 0, out.stderr

    wait_for(
        lambda: ledger_rows(st, "SELECT 1 FROM recordings WHERE device_id = 1 AND state='spooled'"),
        timeout=60,
        what="the daemon's copy committed",
    )
    fm.set_faults()  # full speed for the checks
    row = ledger_rows(st, "SELECT * FROM recordings WHERE device_id = 1")[0]
    assert row["attempts"] == 1, "the daemon's copy was disturbed and had to be redone"
    problems = check_invariants(st.config_path, [big, other], final=True, release_after="never")
    assert not problems, "\n".join(problems)


def test_daemon_recovers_what_a_killed_ingest_left_behind(make_station, daemon, tmp_path):
    st = make_station('release_after = "never"')
    daemon(st)
    wait_for(lambda: (st.data_dir / "locks" / "spool.lock").exists(), what="daemon started")
    rec = Recorder(tmp_path / "CON0003", "CON0003")
    rec.record(random.Random(3), 2, lo=50_000, hi=50_000)
    out = run_agent(st.config_path, ["ingest", str(rec.volume)], crashpoint="copy.after_rename:1")
    assert out.killed
    rows = ledger_rows(st, "SELECT state FROM recordings")
    assert "copying" in {r["state"] for r in rows}  # a leftover only the daemon can clear now
    wait_for(
        lambda: len(ledger_rows(st, "SELECT 1 FROM recordings WHERE sha256 IS NOT NULL")) == 2,
        timeout=30,
        what="the daemon recovered and finished the killed ingest's work",
    )
    problems = check_invariants(st.config_path, [rec], final=True, release_after="never")
    assert not problems, "\n".join(problems)


def test_gate_at_spooled_keeps_the_source_when_the_spool_copy_is_gone(make_station):
    from agent.ingest.ingestor import Ingestor
    from agent.ledger import recordings as rec_ops
    from agent.retention import wipegate

    st = make_station('release_after = "spooled"')
    ctx = st.context()
    rec = Recorder(st.dir / "CON0004", "CON0004")
    (clip,) = rec.record(random.Random(4), 1, lo=1000, hi=1000)
    ing = Ingestor(ctx)
    ing.register_volume(rec.volume)
    row = ing.claim(retry_seconds=0)
    assert ing.ingest(row).state == "spooled"
    spooled = rec_ops.get(ctx.ledger.connect(), row["id"])
    os.chmod(ctx.cfg.spool_dir / spooled["spool_path"], 0o600)
    os.unlink(
        ctx.cfg.spool_dir / spooled["spool_path"]
    )  # the ledger says spooled, the disk disagrees
    decision = wipegate.release(ctx.cfg, ctx.ledger, row["id"])
    assert not decision.allowed and "missing" in decision.reason
    assert clip.exists()


def test_two_processes_never_take_the_same_recording(make_station):
    from agent.ingest.ingestor import Ingestor

    st = make_station('release_after = "never"')
    rec = Recorder(st.dir / "CON0005", "CON0005")
    rec.record(random.Random(5), 2, lo=1000, hi=1000)
    # Two contexts: their own ledger connections and lock descriptors, as two processes have.
    a, b = st.context(), st.context()
    ia, ib = Ingestor(a), Ingestor(b)
    ia.register_volume(rec.volume)
    stale = b.ledger.query(
        "SELECT r.*, d.serial FROM recordings r JOIN devices d ON d.id = r.device_id"
    )  # what B saw before A moved
    row = ia.claim(retry_seconds=0)
    assert row is not None
    assert ib.claim(retry_seconds=0) is None  # one reader per recorder, across processes
    assert ia.ingest(row).state == "spooled"
    mine = next(r for r in stale if r["id"] == row["id"])
    assert not ib.scheduler.take(mine)  # a stale view never wins, even with the recorder free
    other = ib.claim(retry_seconds=0)
    assert other is not None and other["id"] != row["id"]
    assert ib.ingest(other).state == "spooled"
    spooled = ledger_rows(st, "SELECT recording_id FROM custody WHERE type='recording.spooled'")
    assert sorted(r["recording_id"] for r in spooled) == sorted([row["id"], other["id"]])
    a.close()
    b.close()
