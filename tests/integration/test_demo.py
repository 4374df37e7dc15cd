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
    # Encrypted at rest, as a fresh install is: every spool copy is an envelope, the key is
    # outside the data dir.
    copies = [p for p in (tmp_path / "data" / "spool").rglob("*") if p.is_file()
              and not p.name.startswith(".")]  # fmt: skip
    assert len(copies) == 8
    assert all(p.read_bytes()[:8] == b"EVAENV\x00\x01" for p in copies)
    assert (tmp_path / "keys" / "encryption.key").is_file()
