"""A station made by the v0.1.0 baseline upgrades in place (issue 12, item 3).

The baseline (commit in tests/upgrade/baseline) is checked out with `git worktree add` and
runs its own `ingest DIR` and archiver with its own code: absolute spool paths, spool by
serial, `file:///abs` archive refs, key in the data dir. The current release then starts on
that data dir: migration 0008 makes the paths relative (one custody event), every copy is
found, `verify` passes, and nothing is moved or deleted. A row a hand-edited legacy ledger
points outside every root is kept and flagged, its file untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults.daemonrun import run_until_ready
from fixtures.station import v010_config
from toolcheck import require_tool

ROOT = Path(__file__).resolve().parents[2]
BASELINE = (ROOT / "tests" / "upgrade" / "baseline").read_text(encoding="utf-8").strip()

_ARCHIVE = """
import sys
from agent import config
from agent.archiver import Archiver
from agent.context import Context
arch = Archiver(Context(config.load(sys.argv[1])))
for _ in range(200):
    if arch.step() >= 1.0 and arch.next_pending() is None:
        break
"""


@pytest.fixture
def baseline_tree(tmp_path: Path) -> Iterator[Path]:
    git = require_tool("git")
    tree = tmp_path / "baseline-v0.1.0"
    subprocess.run(
        [git, "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BASELINE],
        check=True,
        capture_output=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(
            [git, "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
        )


def _baseline(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("EVIDENCE_AGENT_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith((".evidence-agent-root", "ledger.sqlite3"))
    }


def test_v010_station_upgrades_in_place(baseline_tree, make_station, bodycam, tmp_path):
    station = make_station(ledger=False)  # the baseline creates the ledger, as v0.1.0 did
    vol, _ = bodycam(serial="ZFY1280", clips=3, seconds=1.0)
    cfg = str(v010_config(station))  # the baseline reads the config as v0.1.0 knew it
    out = _baseline(baseline_tree, "-m", "agent", "--config", cfg, "ingest", str(vol), "--json")
    assert json.loads(out.stdout)["copied"] == 3
    _baseline(baseline_tree, "-c", _ARCHIVE, cfg)

    db = station.data_dir / "ledger.sqlite3"
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, spool_path, archive_ref FROM recordings ORDER BY id").fetchall()
    assert all(r[1].startswith("/") and r[2].startswith("file:///") for r in rows)
    # One copy an admin once moved by hand and re-pointed the ledger at: outside every root.
    moved = tmp_path / "hand-moved" / Path(rows[0][1]).name
    moved.parent.mkdir()
    os.rename(rows[0][1], moved)
    with conn:
        conn.execute("UPDATE recordings SET spool_path=? WHERE id=?", (str(moved), rows[0][0]))
    conn.close()
    before = {**_tree(station.data_dir), **_tree(moved.parent)}

    assert run_until_ready(station) == 0  # the current release on the baseline's data dir
    verify = station.cli("verify", "--json")
    report = json.loads(verify.stdout)
    assert verify.returncode == 0 and report["recordings_checked"] == 3, verify.stdout
    assert report["paths_outside_roots"] == [rows[0][0]]
    after = {**_tree(station.data_dir), **_tree(moved.parent)}
    assert before.items() <= after.items()  # nothing moved, deleted or changed

    conn = sqlite3.connect(db)
    now = conn.execute(
        "SELECT id, spool_path, archive_ref, path_outside_roots FROM recordings ORDER BY id"
    ).fetchall()
    assert now[0][1] == str(moved) and "outside" in now[0][3]  # kept and flagged
    for _rid, spool_path, _ref, flag in now[1:]:
        assert not spool_path.startswith("/") and flag is None
        assert (station.data_dir / "spool" / spool_path).is_file()
    assert all(r[2].startswith("file:") and not r[2].startswith("file://") for r in now)
    (event,) = conn.execute("SELECT payload FROM custody WHERE type='ledger.paths_relative'")
    assert json.loads(event[0])["flagged"] == [rows[0][0]]
    conn.close()

    exp = station.cli(
        "export", *[r[0] for r in now], "--to", str(tmp_path / "x"), "--reason", "r",
        "--operator", "OP1",
    )  # fmt: skip
    assert exp.returncode == 0, exp.stderr
