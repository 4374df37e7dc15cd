"""The README's main command: `evidence-agent demo` ingests every simulated recorder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_to_a_verified_summary(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "demo",
            "--recorders",
            "4",
            "--clips",
            "2",
            "--seconds",
            "1",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "summary" in out and "verify: OK" in out
    for serial in ("ZFY1001", "ZFY1002", "ZFY1003", "ZFY1004"):
        assert serial in out
