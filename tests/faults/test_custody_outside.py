"""Custody you can check from outside the station (issue 12, item 4).

Reproduced before the fix: `custody` rows could be edited and deleted with plain SQL (no
append-only triggers), and dropping nothing at all was needed; a spool file swapped with its
`recordings.sha256`/`size` updated to match passed `verify` (verify compared the copy with the
row, never the row with custody). Now: triggers refuse UPDATE/DELETE on custody and
checkpoints, `verify` fails when a trigger is missing or altered, and it compares every
recording's hash and size with its custody events, naming the recording.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3

import pytest

from fixtures.station import Station, ledger_rows


def _ingested(station: Station, bodycam, serial: str = "ZFY1401") -> list[str]:  # type: ignore[no-untyped-def]
    vol, _ = bodycam(serial=serial, clips=2, seconds=1.0)
    station.cli("ingest", str(vol), check=True)
    clean = station.cli("verify", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    return [r["id"] for r in ledger_rows(station, "SELECT id FROM recordings ORDER BY id")]


def _sql(station: Station, *stmts: str | tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    try:
        with conn:
            for s in stmts:
                sql, params = (s, ()) if isinstance(s, str) else s
                conn.execute(sql, params)
    finally:
        conn.close()


def _verify(station: Station, *args: str) -> tuple[int, dict]:
    proc = station.cli("verify", "--json", *args)
    return proc.returncode, json.loads(proc.stdout)


def test_custody_is_append_only_in_the_database(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    _ingested(station, bodycam)
    for stmt in (
        "UPDATE custody SET payload = '{}' WHERE seq = 2",
        "DELETE FROM custody WHERE seq = (SELECT MAX(seq) FROM custody)",
        "DELETE FROM checkpoints",
        "UPDATE checkpoints SET head_hash = 'x'",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            _sql(station, stmt)
    assert _verify(station)[0] == 0


def test_dropped_trigger_fails_verify(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    _ingested(station, bodycam)
    last = ledger_rows(station, "SELECT MAX(seq) AS s FROM custody")[0]["s"]
    # The attacker's first step: drop the guard, then delete the newest events.
    _sql(station, "DROP TRIGGER custody_no_delete", f"DELETE FROM custody WHERE seq = {last}")
    rc, report = _verify(station)
    assert rc == 1
    guards = [p for p in report["problems"] if p["kind"] == "guard"]
    assert [p["subject"] for p in guards] == ["custody_no_delete"]
    assert "missing" in guards[0]["message"]
    text = station.cli("verify")
    assert "FAIL guard custody_no_delete" in text.stdout


def test_altered_trigger_fails_verify(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    _ingested(station, bodycam)
    # Same name, no teeth: "guards" that let every update through.
    _sql(
        station,
        "DROP TRIGGER custody_no_update",
        "CREATE TRIGGER custody_no_update BEFORE UPDATE ON custody BEGIN SELECT 1; END",
        "CREATE TRIGGER sneaky AFTER INSERT ON checkpoints BEGIN SELECT 1; END",
    )
    rc, report = _verify(station)
    assert rc == 1
    guards = {p["subject"]: p["message"] for p in report["problems"] if p["kind"] == "guard"}
    assert set(guards) == {"custody_no_update", "sneaky"}
    assert "altered" in guards["custody_no_update"]


def test_swapped_spool_file_with_ledger_hash_updated_fails_verify(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    ids = _ingested(station, bodycam, serial="ZFY1402")
    victim = ledger_rows(station, "SELECT id, spool_path FROM recordings WHERE id = ?", (ids[0],))[
        0
    ]
    path = station.data_dir / "spool" / victim["spool_path"]
    forged = b"not the evidence" * 1000
    os.chmod(path, 0o640)
    path.write_bytes(forged)
    # The row is "fixed" to match the swapped file: the copy check alone passes now.
    _sql(
        station,
        ("UPDATE recordings SET sha256 = ?, size = ? WHERE id = ?",
         (hashlib.sha256(forged).hexdigest(), len(forged), ids[0])),
    )  # fmt: skip
    rc, report = _verify(station)
    assert rc == 1
    assert not [p for p in report["problems"] if p["kind"] == "copy"]  # the reproduction
    ledger = [p for p in report["problems"] if p["kind"] == "ledger"]
    assert {p["subject"] for p in ledger} == {ids[0]}
    assert any("SHA-256" in p["message"] for p in ledger)
    assert any("size" in p["message"] for p in ledger)


def test_custody_without_row_and_row_without_custody(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    ids = _ingested(station, bodycam, serial="ZFY1403")
    spooled = ledger_rows(
        station, "SELECT seq FROM custody WHERE type='recording.spooled' AND recording_id=?",
        (ids[1],),
    )[0]["seq"]  # fmt: skip
    # A forged recording row nobody copied (hash set, no custody event) ...
    _sql(
        station,
        "CREATE TEMP TABLE twin AS SELECT * FROM recordings WHERE id = "
        f"'{ids[0]}'",
        "UPDATE twin SET id = 'forged-0001', source_path = source_path || '.x',"
        " source_path_raw = CAST(source_path_raw AS BLOB) || x'78'",
        "INSERT INTO recordings SELECT * FROM twin",
        ("DELETE FROM recordings WHERE id = ?", (ids[1],)),  # ... and a real one deleted
    )  # fmt: skip
    rc, report = _verify(station)
    assert rc == 1
    ledger = {p["subject"]: p["message"] for p in report["problems"] if p["kind"] == "ledger"}
    assert "no custody event" in ledger["forged-0001"]
    assert ids[1] in ledger[f"event {spooled}"] and "no row" in ledger[f"event {spooled}"]


def test_no_local_value_switches_the_checks_off(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    ids = _ingested(station, bodycam, serial="ZFY1404")
    conn = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    keys = [r[0] for r in conn.execute("SELECT key FROM kv")]
    conn.close()
    _sql(
        station,
        "DROP TRIGGER custody_no_update",
        ("UPDATE recordings SET size = size + 1 WHERE id = ?", (ids[0],)),
        *[("DELETE FROM kv WHERE key = ?", (k,)) for k in keys],
    )
    rc, report = _verify(station)
    assert rc == 1
    kinds = {(p["kind"], p["subject"]) for p in report["problems"]}
    assert ("guard", "custody_no_update") in kinds and ("ledger", ids[0]) in kinds
