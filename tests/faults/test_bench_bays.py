"""bench/bays.py, tiny: throttled recorders ingested at once by the daemon, against the peer."""

from __future__ import annotations

import os

from bench.bays import parser, run
from fixtures.faultfs import owned_source, require_fuse
from toolcheck import unavailable


def test_bays_bench_runs_tiny(tmp_path):
    require_fuse()
    if os.geteuid() != 0:
        unavailable("bench/bays.py drops the page cache and mounts FUSE volumes: needs root")
    args = parser().parse_args(
        ["--recorders", "2", "--clips", "2", "--mib", "2", "--bps", "40000000",
         "--dir", str(tmp_path), "--timeout", "120", "--fsname", owned_source("bays")]
    )  # fmt: skip
    res = run(args)
    text = res.report()
    print(text)
    assert res.files == 4 and res.total_bytes == 4 * 2 * (1 << 20)
    # Both sides moved every byte through the 40 MB/s-per-recorder throttle.
    ceiling = 2 * 40e6
    assert res.total_bytes / res.peer_seconds < ceiling * 1.05
    assert 0 < res.total_bytes / res.agent_seconds < ceiling * 1.05
    assert res.agent_cpu_seconds >= 0
    assert "agent / ceiling = " in text and "CPU s per GB" in text
    assert not list(tmp_path.glob("evbench-bays-*")), "the bench left its files behind"
