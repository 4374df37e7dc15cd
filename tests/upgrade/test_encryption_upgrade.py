"""A station made by the v0.1.0 baseline upgrades to encryption at rest (issue 19): its
plaintext spool copies are listed, encrypted in place by envelopes that verified, and `verify`
passes; nothing is moved or lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from upgrade.test_spool_layout_upgrade import _clip, baseline_tree  # noqa: F401 - a fixture

from agent.core import sealedio
from faults.harness import sha256_of
from fixtures.station import ledger_rows, v010_config


def test_v010_plaintext_copies_are_encrypted_after_upgrade(make_station, baseline_tree, tmp_path):  # noqa: F811
    key = tmp_path / "etc-keys" / "encryption.key"
    station = make_station(f'[crypto]\nkey_file = "{key}"\n', ledger=False)
    vol = station.mount_root / "ZFY0902"
    vol.mkdir()
    (vol / "DEVINFO.TXT").write_text("vendor=ZFY\nserial=ZFY0902\n", encoding="utf-8")
    for n in range(3):
        _clip(vol, "ZFY0902", n)
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
    assert len(before) == 3 and all(sha256_of(p) == sha for p, sha in before.items())

    station.cli("keys", "encryption", "init", check=True)  # migrates the ledger (0016)
    shown = json.loads(station.cli("keys", "encryption", "show", "--json", check=True).stdout)
    assert shown["spool_copies"] == {"plaintext": 3}  # listed
    out = station.cli("keys", "encryption", "encrypt-existing", check=True)
    assert "3 plaintext spool copies encrypted, 0 left" in out.stdout
    spool = station.data_dir / "spool"
    rows = ledger_rows(station, "SELECT spool_path, sha256, spool_key_id FROM recordings")
    assert {Path(r["spool_path"]).name for r in rows} == {Path(p).name for p in before}
    for r in rows:
        copy = spool / r["spool_path"]
        assert sealedio.is_sealed(copy) and r["spool_key_id"] == shown["key_ids"][0]
    assert station.cli("verify").returncode == 0
