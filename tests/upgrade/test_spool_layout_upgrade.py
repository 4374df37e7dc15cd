"""A station made by the v0.1.0 baseline (spool laid out by serial, absolute paths, key in the
data dir) upgrades in place as far as the spool layout and recovery go: every copy is found
where its row says, nothing is moved or deleted, new copies go by device id, `verify` passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from faults.harness import sha256_of
from fixtures.station import ROOT, ledger_rows, v010_config

BASELINE = (ROOT / "tests" / "upgrade" / "baseline").read_text(encoding="utf-8").strip()


@pytest.fixture
def baseline_tree(tmp_path: Path) -> Path:
    """The v0.1.0 source tree, extracted from git."""
    out = tmp_path / "v0.1.0"
    out.mkdir()
    archive = tmp_path / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), BASELINE],
                   check=True, capture_output=True)  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out


def _clip(vol: Path, serial: str, n: int) -> None:
    p = vol / "DCIM" / f"{serial}_100001_2026092108{n:02d}00_{n:04d}.MP4"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(os.urandom(8192 + n))
    os.utime(p, (1_790_000_000 + n, 1_790_000_000 + n))


def test_v010_spool_by_serial_is_kept_in_place(make_station, baseline_tree: Path) -> None:  # type: ignore[no-untyped-def]
    station = make_station(ledger=False)  # the baseline creates the ledger, as v0.1.0 did
    vol = station.mount_root / "ZFY0901"
    vol.mkdir()
    (vol / "DEVINFO.TXT").write_text("vendor=ZFY\nserial=ZFY0901\n", encoding="utf-8")
    for n in range(3):
        _clip(vol, "ZFY0901", n)
    env = {**os.environ, "PYTHONPATH": str(baseline_tree)}
    env.pop("EVIDENCE_AGENT_CONFIG", None)
    old = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(v010_config(station)), "ingest", str(vol)],
        cwd=baseline_tree, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert old.returncode == 0, old.stderr
    before = {
        r["spool_path"]: r["sha256"] for r in ledger_rows(station, "SELECT * FROM recordings")
    }
    assert len(before) == 3
    assert {Path(p).parent.name for p in before} == {"ZFY0901"}  # v0.1.0: spool by serial

    _clip(vol, "ZFY0901", 3)  # a new clip after the upgrade
    new = station.cli("ingest", str(vol), "--json", check=True)
    assert '"failed": []' in new.stdout
    rows = ledger_rows(station, "SELECT * FROM recordings")
    for path, sha in before.items():
        assert sha256_of(path) == sha, f"{path} moved, lost or changed"
    # Paths are stored relative to the spool root after migration 0008; the files stay put.
    spool = station.data_dir / "spool"
    after = {str(spool / r["spool_path"]): r["sha256"] for r in rows}
    assert {p: after[p] for p in before} == before
    (added,) = [r for r in rows if str(spool / r["spool_path"]) not in before]
    assert Path(added["spool_path"]).parent.name == f"device-{added['device_id']}"
    assert not (station.data_dir / "spool" / ".orphans").exists()
    assert station.cli("verify").returncode == 0
