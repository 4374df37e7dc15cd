"""A ledger written by the v0.1.0 baseline takes migration 0014 in place: its metadata versions
still verify against their custody events, and the party and case records work on it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from agent.compliance.casefile import CASE_FILES_SQL
from agent.ledger import custody
from agent.ledger.db import Ledger
from agent.tagging import metadata
from tests.upgrade.test_scale_upgrade import WRITER, _baseline


def test_baseline_ledger_takes_the_case_file_migration(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    path = tmp_path / "ledger.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(base)}
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(base)],
        capture_output=True,
        text=True,
        env=env,
        cwd=base,
    )
    assert proc.returncode == 0, proc.stderr

    ledger = Ledger(path)  # migrates
    assert ledger.one("PRAGMA user_version")[0] >= 13  # type: ignore[index]
    conn = ledger.connect()
    assert conn.execute("SELECT COUNT(*) FROM metadata_versions").fetchone()[0] > 0
    assert metadata.verify_versions(conn) == []  # old events, no salt: unchanged
    rid = conn.execute("SELECT recording_id FROM metadata_versions LIMIT 1").fetchone()[0]
    with ledger.tx() as tx:
        doc = {**metadata.current(tx, rid)[1], "case_number": "C-UP", "party": "某公司"}
        metadata.add_version(tx, rid, doc, ["party"], actor="t", reason="r", origin="cli")
        tx.execute(
            "INSERT INTO case_versions VALUES('C-UP', 1, '2026-01-01', 'r', 't', 'cli', 'now')"
        )
        custody.append(tx, "case.concluded", {"case_number": "C-UP"}, actor="t")
    assert metadata.verify_versions(conn) == []
    rows = conn.execute(CASE_FILES_SQL).fetchall()
    assert [(r["case_number"], r["n"]) for r in rows] == [("C-UP", 1)]
    ledger.close()
    raw = sqlite3.connect(path)
    try:
        payloads = [r[0] for r in raw.execute("SELECT payload FROM custody")]
    finally:
        raw.close()
    assert not any("某公司" in p for p in payloads)
