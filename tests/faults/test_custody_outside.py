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
from pathlib import Path

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


# --- anchors outside the station and the pinned key -----------------------------------------
#
# Reproduced before the fix: deleting the newest custody rows, their checkpoints and the kv
# row `archive.checkpoint_shipped` needed no key and `verify` passed (it checked only the
# anchor that kv row named); a rewrite re-signed with a key planted next to the ledger passed
# (verify trusted that key). Now every anchor in the archive is checked (oldest version), and
# signatures are checked with a key pinned outside the data dir.


def _archived_station(station: Station, bodycam, serial: str):  # type: ignore[no-untyped-def]
    from agent.archive.archiver import Archiver
    from agent.ledger import custody
    from fixtures.archive import drain, ingest_volume

    vol, _ = bodycam(serial=serial, clips=2, seconds=1.0)
    ctx = station.context()
    ingest_volume(ctx, vol)
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id)  # an anchor in the middle ...
    arch = Archiver(ctx)
    drain(arch)
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id)  # ... and one at the head
    arch.maintain(force=True)
    rc, clean = _verify(station)
    assert rc == 0 and clean["anchors_checked"] >= 2, clean
    return ctx


def _pinned_key(station: Station, tmp_path: Path) -> Path:
    """The public key as the fleet register holds it, outside the data dir."""
    pinned = tmp_path / "register" / "station.pub"
    pinned.parent.mkdir()
    pinned.write_bytes((station.data_dir / "keys" / "station.ed25519.pub").read_bytes())
    return pinned


def test_deleted_newest_custody_rows_fail_against_the_archive(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    from agent.ledger import appendonly

    _archived_station(station, bodycam, "ZFY1405")
    head = ledger_rows(station, "SELECT MAX(seq) AS s FROM custody")[0]["s"]
    keep = head - 3
    _sql(
        station,
        "DROP TRIGGER custody_no_delete",
        "DROP TRIGGER checkpoints_no_delete",
        f"DELETE FROM custody WHERE seq > {keep}",
        f"DELETE FROM checkpoints WHERE head_seq > {keep}",
        "DELETE FROM kv WHERE key LIKE 'archive.%'",
        appendonly.GUARDS["custody_no_delete"],  # put back: nothing local looks touched
        appendonly.GUARDS["checkpoints_no_delete"],
    )
    rc, report = _verify(station)
    assert rc == 1
    # The reproduction: the local chain and local checkpoints are consistent on their own.
    assert not [p for p in report["problems"] if p["kind"] in ("custody", "checkpoint", "guard")]
    anchors = {p["subject"]: p["message"] for p in report["problems"] if p["kind"] == "anchor"}
    assert f"event {head}" in anchors, report["problems"]
    assert (
        "truncation" in anchors[f"event {head}"]
        and f"ends at event {keep}" in anchors[f"event {head}"]
    )
    text = station.cli("verify").stdout
    assert f"FAIL anchor event {head}: truncation" in text
    rc, inc = _verify(station, "--incremental")  # the newest anchor holds it too
    assert rc == 1 and (f"event {head}") in {p["subject"] for p in inc["problems"]}


def test_rewrite_resigned_with_a_planted_key_fails_with_the_pinned_key(
    station, bodycam, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.ledger import appendonly, custody

    ctx = _archived_station(station, bodycam, "ZFY1406")
    pinned = _pinned_key(station, tmp_path)
    forged_key = Ed25519PrivateKey.generate()
    keys = station.data_dir / "keys"
    for name, data in (
        ("station.ed25519.pem", forged_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())),
        ("station.ed25519.pub", forged_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
    ):  # fmt: skip
        (keys / name).chmod(0o600)
        (keys / name).write_bytes(data)
    target = ledger_rows(station, "SELECT seq FROM custody WHERE type='recording.discovered'")[0]
    with ctx.ledger.tx() as conn:
        for guard in ("custody_no_update", "checkpoints_no_update"):
            conn.execute(f"DROP TRIGGER {guard}")
        prev = custody.GENESIS
        for r in conn.execute("SELECT * FROM custody ORDER BY seq").fetchall():
            payload = r["payload"]
            if r["seq"] == target["seq"]:
                payload = payload.replace('"size":', '"forged":true,"size":')
            h = custody.event_hash(
                r["seq"], r["at"], r["type"], r["recording_id"], r["actor"], payload, r["alg"], prev
            )
            conn.execute(
                "UPDATE custody SET payload=?, prev_hash=?, hash=? WHERE seq=?",
                (payload, prev, h, r["seq"]),
            )
            prev = h
        for cp in conn.execute("SELECT * FROM checkpoints").fetchall():
            st = json.loads(cp["statement"])
            st["head_hash"] = conn.execute(
                "SELECT hash FROM custody WHERE seq=?", (st["head_seq"],)
            ).fetchone()[0]
            st["key"] = "sha256:" + "0" * 32
            statement = custody.canonical(st)
            conn.execute(
                "UPDATE checkpoints SET head_hash=?, statement=?, signature=? WHERE seq=?",
                (st["head_hash"], statement, forged_key.sign(statement.encode()).hex(), cp["seq"]),
            )
        for guard in ("custody_no_update", "checkpoints_no_update"):
            conn.execute(appendonly.GUARDS[guard])
    # The reproduction: trusting the key next to the ledger, the chain and every local
    # checkpoint verify; only the archive's anchors still disagree.
    rc, unpinned = _verify(station)
    assert rc == 1 and unpinned["key_pinned"] is False
    assert {p["kind"] for p in unpinned["problems"]} == {"anchor"}, unpinned["problems"]
    # With the pinned key: every re-signed checkpoint fails, the planted key is named, and the
    # anchors name the rewritten events.
    rc, report = _verify(station, "--pubkey", str(pinned))
    assert rc == 1 and report["key_pinned"] is True
    kinds = {p["kind"] for p in report["problems"]}
    assert {"checkpoint", "key", "anchor"} <= kinds, report["problems"]
    assert any(p["kind"] == "anchor" and "rewrite" in p["message"] for p in report["problems"])
    key = [p for p in report["problems"] if p["kind"] == "key"]
    assert "not the pinned key" in key[0]["message"]


def test_unpinned_is_said_and_a_configured_fingerprint_pins(
    make_station, bodycam, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from agent.ledger import stationkey

    station = make_station()
    _ingested(station, bodycam, serial="ZFY1407")
    rc, report = _verify(station)
    assert rc == 0 and report["key_pinned"] is False and "UNPINNED" in report["key_source"]
    assert "UNPINNED key" in station.cli("verify").stdout
    fp = stationkey.fingerprint(stationkey.load_public(station.data_dir / "keys"))
    assert report["key_fingerprint"] == fp
    env = {"EVIDENCE_AGENT__CUSTODY__PUBKEY_FINGERPRINT": fp}
    proc = station.cli("verify", "--json", env=env)
    pinned = json.loads(proc.stdout)
    assert proc.returncode == 0 and pinned["key_pinned"] is True, pinned
    assert f"KEY pinned {fp}" in station.cli("verify", env=env).stdout
    wrong = {"EVIDENCE_AGENT__CUSTODY__PUBKEY_FINGERPRINT": "sha256:" + "1" * 32}
    proc = station.cli("verify", "--json", env=wrong)
    assert proc.returncode == 1
    problems = json.loads(proc.stdout)["problems"]
    assert [p["subject"] for p in problems] == ["custody.pubkey_fingerprint"]


def test_local_anchor_is_write_once(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    from agent.archive.local import LocalArchive
    from agent.archive.store import LockSpec
    from agent.core.errors import AnchorConflictError

    store = LocalArchive(f"file://{station.data_dir / 'archive'}", off_station=False)
    key = "_custody/st/checkpoints/000000000001.json"
    first = store.put_once(key, b"one", LockSpec(), "application/json")
    assert store.put_once(key, b"one", LockSpec(), "application/json") == first  # a retry
    with pytest.raises(AnchorConflictError, match="already exists"):
        store.put_once(key, b"two", LockSpec(), "application/json")
    assert store.document_versions(key) == [b"one"]
    assert store.list_documents("_custody/st/checkpoints/") == [key]


def test_a_station_that_lost_history_cannot_re_anchor_it(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    """A ledger that lost its newest events (restored from an older backup, or truncated)
    reaches the anchored seq again with other events: the archived anchor is kept, the
    conflict is a custody event, the archiver goes on, and verify names the event."""
    from agent.archive.archiver import Archiver
    from agent.ledger import appendonly, custody

    ctx = _archived_station(station, bodycam, "ZFY1409")
    head = ledger_rows(station, "SELECT MAX(seq) AS s FROM custody")[0]["s"]
    _sql(
        station,
        "DROP TRIGGER custody_no_delete",
        "DROP TRIGGER checkpoints_no_delete",
        f"DELETE FROM custody WHERE seq > {head - 2}",
        f"DELETE FROM checkpoints WHERE head_seq > {head - 2}",
        "DELETE FROM kv WHERE key = 'archive.checkpoint_shipped'",  # as the older backup had
        appendonly.GUARDS["custody_no_delete"],
        appendonly.GUARDS["checkpoints_no_delete"],
    )
    ctx.ledger.close()
    with ctx.ledger.tx() as conn:
        for n in range(2):
            custody.append(conn, "station.note", {"n": n})
        custody.checkpoint(conn, ctx.key, ctx.station_id)
    Archiver(ctx).maintain(force=True)  # does not raise
    conflicts = ledger_rows(station, "SELECT payload FROM custody WHERE type='anchor.conflict'")
    assert len(conflicts) == 1 and f"{head:012d}.json" in conflicts[0]["payload"]
    rc, report = _verify(station)
    assert rc == 1
    assert any(
        p["subject"] == f"event {head}" and "rewrite" in p["message"] for p in report["problems"]
    ), report["problems"]


def test_incremental_checks_what_changed_since_the_newest_anchor(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    _archived_station(station, bodycam, "ZFY1413")
    old = [r["id"] for r in ledger_rows(station, "SELECT id FROM recordings ORDER BY id")]
    vol, _ = bodycam(serial="ZFY1414", clips=1, seconds=1.0)
    station.cli("ingest", str(vol), check=True)  # after the newest anchor
    new = [r["id"] for r in ledger_rows(station, "SELECT id FROM recordings")]
    (fresh,) = set(new) - set(old)
    rc, report = _verify(station, "--incremental")
    assert rc == 0, report["problems"]
    assert report["incremental"] and report["incremental_from"] > 0
    assert report["skipped"]["copies"] == len(old) and report["recordings_checked"] == 1
    assert "INCREMENTAL from event" in station.cli("verify", "--incremental").stdout

    def flip(rid: str) -> None:
        row = ledger_rows(station, "SELECT spool_path FROM recordings WHERE id = ?", (rid,))[0]
        path = station.data_dir / "spool" / row["spool_path"]
        os.chmod(path, 0o640)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))

    flip(old[0])  # before the anchor: skipped by --incremental, and it says so
    assert _verify(station, "--incremental")[0] == 0
    assert _verify(station)[0] == 1
    flip(fresh)  # after the anchor: --incremental catches it
    rc, report = _verify(station, "--incremental")
    assert rc == 1 and fresh in {p["subject"] for p in report["problems"] if p["kind"] == "copy"}


def test_custody_verifies_from_the_archive_alone(station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The station disk is lost: the ledger is gone, the chain is checked from the archived,
    signed segments and the anchors alone; a segment missing from the archive is named."""
    import shutil

    _archived_station(station, bodycam, "ZFY1415")
    pinned = _pinned_key(station, tmp_path)
    events = ledger_rows(station, "SELECT COUNT(*) AS n FROM custody")[0]["n"]
    covered = ledger_rows(station, "SELECT MAX(head_seq) AS h FROM checkpoints")[0]["h"]
    for p in station.data_dir.glob("ledger.sqlite3*"):
        p.unlink()  # the disk with the ledger is lost
    proc = station.cli("verify-archive", "--pubkey", str(pinned), "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    assert report["events"] == covered and covered <= events and report["segments"] >= 1
    assert report["anchors_checked"] >= 2
    assert not (station.data_dir / "ledger.sqlite3").exists()  # nothing was created
    folder = station.data_dir / "archive" / "_docs" / "_custody"
    first = sorted(folder.glob("*/segments/*"))[0]
    shutil.rmtree(first)
    proc = station.cli("verify-archive", "--pubkey", str(pinned))
    assert proc.returncode == 1 and "FAIL event 1: missing from the archive" in proc.stdout
