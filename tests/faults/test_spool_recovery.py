"""Fault matrix: crash recovery deletes nothing by inference (issue 12, item 2).

On v0.1.0 recovery emptied `<spool>/.tmp` whatever it held and deleted every spool file whose
path string was not in the ledger: reaching the data dir through a symlink deleted every copy.
Now only the copier's own temp names are removed; files a ledger row names stay (matched by
resolved path, inode and name); anything else is moved to `<spool>/.orphans/` with a custody
event and listed by `status` and `verify`. A hashed recording whose copy is gone is an
`integrity.violation` and is copied again while its source is on the recorder.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from agent.core.ids import uuid7
from agent.ingest.ingestor import Ingestor
from faults.harness import sha256_of
from fixtures.station import Station, ledger_rows, write_config


def _volume(st: Station, serial: str = "ZFY0701", clips: int = 3) -> Path:
    vol = st.mount_root / serial
    (vol / "DCIM").mkdir(parents=True)
    (vol / "DEVINFO.TXT").write_text(f"vendor=ZFY\nserial={serial}\n", encoding="utf-8")
    for i in range(clips):
        p = vol / "DCIM" / f"{serial}_100001_2026092108{i:02d}00_{i:04d}.MP4"
        p.write_bytes(os.urandom(8192 + i))
        os.utime(p, (1_790_000_000 + i, 1_790_000_000 + i))
    return vol


def _copy(st: Station, stored: str) -> Path:
    """The file a row's spool_path names (stored relative to the spool root since 0008)."""
    return st.data_dir / "spool" / stored


def _copies(st: Station) -> dict[Path, str]:
    rows = ledger_rows(st, "SELECT * FROM recordings")
    return {_copy(st, r["spool_path"]): r["sha256"] for r in rows}


def _sql(st: Station, sql: str, *params: object) -> None:
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_data_dir_reached_through_a_symlink_deletes_nothing(make_station, daemon) -> None:  # type: ignore[no-untyped-def]
    st = make_station()
    vol = _volume(st)
    st.cli("ingest", str(vol), check=True)
    before = _copies(st)
    assert len(before) == 3
    # The same station, its data dir spelled through a symlink (a moved disk, a bind mount).
    link = st.dir / "data-link"
    link.symlink_to(st.data_dir)
    linked = Station(st.dir, st.dir / "linked.toml", link, st.mount_root)
    write_config(linked.config_path, link, st.mount_root)
    assert linked.cli("ingest", str(vol), check=True).returncode == 0  # runs recovery first
    proc = daemon(linked)  # and the daemon's start-up recovery
    try:
        proc.wait(timeout=6)
    except Exception:  # noqa: BLE001 - still running after its recovery, as it should
        proc.terminate()
        proc.wait(timeout=30)
    for path, sha in before.items():
        assert sha256_of(path) == sha, f"{path} lost or changed"
    assert not (st.data_dir / "spool" / ".orphans").exists()
    assert not ledger_rows(st, "SELECT 1 FROM custody WHERE type='spool.orphan_moved'")
    assert linked.cli("verify").returncode == 0
    assert st.cli("verify").returncode == 0


def test_recovery_removes_only_its_own_temps_and_moves_strays_aside(station) -> None:  # type: ignore[no-untyped-def]
    vol = _volume(station)
    station.cli("ingest", str(vol), check=True)
    spool = station.data_dir / "spool"
    rows = ledger_rows(station, "SELECT * FROM recordings ORDER BY id")
    # A v0.1.0 station whose recorder said serial ".tmp": its copy lives in <spool>/.tmp.
    old = _copy(station, rows[0]["spool_path"])
    legacy = spool / ".tmp" / old.name
    os.rename(old, legacy)
    _sql(station, "UPDATE recordings SET spool_path=? WHERE id=?", str(legacy), rows[0]["id"])
    own_temp = spool / ".tmp" / f".{uuid7()}.mp4.partial"
    own_temp.write_bytes(b"half a copy")
    not_ours = spool / ".tmp" / "notes.txt"
    not_ours.write_bytes(b"someone's file")
    stray = old.parent / f"{uuid7()}.mp4"  # renamed into place, killed before its commit
    stray.write_bytes(b"copy without a ledger row")
    hostile = os.path.join(os.fsencode(old.parent), b"bad\xff\nname.mp4")
    with open(hostile, "wb") as fh:
        fh.write(b"a file with a hostile name")

    ctx = station.context()
    try:
        Ingestor(ctx).recover()
    finally:
        ctx.close()
    assert not own_temp.exists()
    assert sha256_of(legacy) == rows[0]["sha256"], "a ledger-named copy was touched"
    for r in rows[1:]:
        assert sha256_of(_copy(station, r["spool_path"])) == r["sha256"]
    assert not not_ours.exists() and not stray.exists()
    moved = sorted(p.read_bytes() for p in (spool / ".orphans").iterdir())
    assert not os.path.lexists(hostile)
    assert moved == [b"a file with a hostile name", b"copy without a ledger row", b"someone's file"]
    events = ledger_rows(station, "SELECT payload FROM custody WHERE type='spool.orphan_moved'")
    assert len(events) == 3 and all(json.loads(e["payload"])["to"] for e in events)
    froms = {json.loads(e["payload"])["from"] for e in events}
    assert "device-1/bad\\xff\\x0aname.mp4" in froms  # shown escaped, never raw
    assert len(ledger_rows(station, "SELECT 1 FROM outbox WHERE type='spool.orphan'")) == 3
    doc = json.loads(station.cli("status", "--json", check=True).stdout)
    assert len(doc["spool_orphans"]) == 3
    verify = station.cli("verify")
    assert verify.returncode == 0, verify.stdout
    assert verify.stdout.count("NOTE orphan .orphans/") == 3


def test_missing_spooled_copy_is_a_violation_and_is_copied_again(station) -> None:  # type: ignore[no-untyped-def]
    vol = _volume(station, "ZFY0702", clips=2)
    ctx = station.context()
    try:
        ing = Ingestor(ctx)
        report = ing.register_volume(vol)
        while (row := ing.claim([report.device_id], retry_seconds=0)) is not None:
            assert ing.ingest(row).state == "spooled"
        victim = ctx.ledger.query("SELECT * FROM recordings ORDER BY id LIMIT 1")[0]
        os.chmod(_copy(station, victim["spool_path"]), 0o600)
        os.unlink(_copy(station, victim["spool_path"]))
        ing.recover()
        after = ctx.ledger.one("SELECT * FROM recordings WHERE id=?", (victim["id"],))
        assert after is not None and after["state"] == "discovered"
        assert "missing" in after["reason"]
        custody = ctx.ledger.query(
            "SELECT payload FROM custody WHERE type='integrity.violation' AND recording_id=?",
            (victim["id"],),
        )
        assert len(custody) == 1 and "copying it again" in custody[0]["payload"]
        outbox = ctx.ledger.query("SELECT payload FROM outbox WHERE type='integrity.violation'")
        assert len(outbox) == 1 and victim["id"] in outbox[0]["payload"]
        row = ing.claim([report.device_id], retry_seconds=0)
        assert row is not None and ing.ingest(row).state == "spooled"
        again = ctx.ledger.one("SELECT * FROM recordings WHERE id=?", (victim["id"],))
        assert again is not None and again["sha256"] == victim["sha256"]
        assert sha256_of(_copy(station, again["spool_path"])) == victim["sha256"]
        # Source gone too (undocked): reported once, the row is left as it is for an operator.
        other = ctx.ledger.query("SELECT * FROM recordings WHERE id!=?", (victim["id"],))[0]
        ing.undock(vol)
        os.chmod(_copy(station, other["spool_path"]), 0o600)
        os.unlink(_copy(station, other["spool_path"]))
        ing.recover()
        ing.recover()
        n = ctx.ledger.one(
            "SELECT COUNT(*) FROM custody WHERE type='integrity.violation' AND recording_id=?",
            (other["id"],),
        )
        assert n is not None and n[0] == 1
        state = ctx.ledger.one("SELECT state FROM recordings WHERE id=?", (other["id"],))
        assert state is not None and state[0] == "spooled"
    finally:
        ctx.close()
    assert station.cli("verify").returncode == 1  # the lost copy stays visible
