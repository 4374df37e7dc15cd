"""Soak, 60 s version of bench/soak.py: dock churn with random faults, then 0 invariant
violations and a flat daemon RSS (growth after warm-up under 10 %)."""

from __future__ import annotations

from bench.soak import SoakOptions, run
from faults.harness import seed_from_env
from fixtures.faultfs import owned_source, require_fuse


def test_soak_60s(tmp_path):
    require_fuse()
    seed = seed_from_env()
    res = run(
        SoakOptions(
            seconds=60, seed=seed, dir=str(tmp_path), warmup=20, fsname=owned_source("soak")
        )
    )
    print(res.report())
    assert not res.violations, res.report()
    assert res.rss_growth < 0.10, res.report()
    # at least every clip (a clip rewritten after hashing is kept in both versions)
    assert res.clips_ingested >= res.clips_recorded > 0
    assert sum(res.faults.values()) > 0
