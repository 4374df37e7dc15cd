"""Acceptance: one changed byte in a spool copy or a custody row makes verify fail and say which."""

from __future__ import annotations

import json
import os
import sqlite3

from fixtures.station import ledger_rows


def _ingest(station, bodycam):
    vol, clips = bodycam(serial="ZFY0300", clips=2)
    station.cli("ingest", str(vol), check=True)
    assert station.cli("verify").returncode == 0


def test_flipped_byte_in_spool_copy(station, bodycam):
    _ingest(station, bodycam)
    row = ledger_rows(station, "SELECT id, spool_path FROM recordings ORDER BY id LIMIT 1")[0]
    path = station.data_dir / "spool" / row["spool_path"]
    os.chmod(path, 0o640)  # spool copies are read-only; an attacker or a fault does not care
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    out = station.cli("verify", "--json")
    assert out.returncode != 0
    report = json.loads(out.stdout)
    assert [p["subject"] for p in report["problems"]] == [row["id"]]
    assert str(path) in report["problems"][0]["message"]
    text = station.cli("verify")
    assert row["id"] in text.stdout and "FAILED" in text.stdout


def test_edited_custody_row(station, bodycam):
    _ingest(station, bodycam)
    conn = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    with conn:
        conn.execute("DROP TRIGGER custody_no_update")  # an attacker drops the guard first
        seq, payload = conn.execute(
            "SELECT seq, payload FROM custody WHERE type='recording.spooled' LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE custody SET payload = ? WHERE seq = ?",
            (payload.replace('"size":', '"size":1'), seq),
        )
    conn.close()
    out = station.cli("verify", "--json")
    assert out.returncode != 0
    problems = json.loads(out.stdout)["problems"]
    assert any(p["kind"] == "custody" and p["subject"] == f"event {seq}" for p in problems)


def test_deleted_custody_row_is_caught(station, bodycam):
    _ingest(station, bodycam)
    conn = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    with conn:
        conn.execute("DROP TRIGGER custody_no_delete")  # an attacker drops the guard first
        conn.execute("DELETE FROM custody WHERE seq = 2")
    conn.close()
    out = station.cli("verify", "--json")
    assert out.returncode != 0
    assert any(p["subject"] == "event 3" for p in json.loads(out.stdout)["problems"])
