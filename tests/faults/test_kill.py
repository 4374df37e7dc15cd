"""Acceptance: all invariants hold over a seeded run of at least 50 SIGKILL points.

`evidence-agent ingest` and `run` are killed at the named crash points and at seeded random
moments while the recorders keep recording; after every kill the crash-consistent invariants
are checked, and after a clean restart all of them (and `evidence-agent verify`).
Replay a failing run with EVIDENCE_FAULT_SEED=<seed printed below>.
"""

from __future__ import annotations

import random

from faults.harness import KillRunner, Recorder, check_invariants, run_agent, seed_from_env

KILLS = 50


def test_seeded_sigkill_run_keeps_every_invariant(make_station):
    seed = seed_from_env()
    print(f"kill harness seed {seed} (replay: EVIDENCE_FAULT_SEED={seed})")
    st = make_station(
        'release_after = "archived"\nchunk_bytes = 65536\n[archive]\noff_station = true\n'
    )
    rng = random.Random(seed)
    recorders = [Recorder(st.mount_root / f"REC{i}", f"KIL{i:04d}") for i in range(3)]
    for rec in recorders:
        rec.record(rng, 3)
    runner = KillRunner(st.config_path, recorders, seed)
    runner.run(KILLS)
    print(runner.summary())
    assert runner.kills >= KILLS, runner.summary()
    runner.settle()
    final = check_invariants(st.config_path, recorders, final=True)
    verify = run_agent(st.config_path, ["verify"])
    assert not runner.violations + final, f"seed {seed}:\n" + "\n".join(runner.violations + final)
    assert verify.returncode == 0, verify.stderr
    by_point = runner.summary()
    assert "crashpoint" in by_point and "random moment" in by_point
