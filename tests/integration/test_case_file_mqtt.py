"""The case file and the party on a real Mosquitto (issue 16, item 4): a case concluded 31
days ago with a recording not archived is overdue in the retained compliance payload; the party
(执法对象) appears in no MQTT message, no log line and no file of the archive, sidecars included.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fixtures.compliance import SH, write_inventory
from fixtures.consoles import add_console
from fixtures.mqtt_agent import drop_volume, mqtt_config, running, validate, wait_ledger
from fixtures.station import Station

P = "evidence/test-station"
MARK = "PARTYMARK7"
PARTY = f"张三 {MARK} 某化工有限公司"
CASE = "C-2026-031"


def _db(station: Station) -> sqlite3.Connection:
    conn = sqlite3.connect(station.data_dir / "ledger.sqlite3", timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def _ids(station: Station, serial: str) -> list[str]:
    with _db(station) as db:
        rows = db.execute(
            "SELECT r.id FROM recordings r JOIN devices d ON d.id = r.device_id WHERE d.serial = ?",
            (serial,),
        )
        return [r[0] for r in rows]


def _sidecar_version(station: Station, rid: str) -> int:
    with _db(station) as db:
        row = db.execute(
            "SELECT sidecar_version FROM archive_objects WHERE recording_id = ?", (rid,)
        ).fetchone()
    return int(row[0] or 0) if row else 0


def test_overdue_case_on_mqtt_and_the_party_never_leaves_the_ledger(
    make_station, broker, subscribe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # ZFY0001 is in the inventory (archived as usual); ZFY0002 is not (held in quarantine, so
    # never archived: the case stays open).
    inventory = write_inventory(tmp_path / "inventory.csv", [("ZFY0001", "UNIT01", "in_service")])
    station = make_station(mqtt_config(broker.url) + f'\n[inventory]\nfile = "{inventory}"\n')
    key = add_console(station, "op7", "custodian")
    sub = subscribe(broker, "#")
    caplog.set_level(logging.DEBUG)
    with running(station):
        sub.wait_for(lambda m: m.topic == f"{P}/availability" and m.payload == b"online")
        drop_volume(station, tmp_path, "ZFY0001", 1)
        drop_volume(station, tmp_path, "ZFY0002", 1)
        wait_ledger(station, "SELECT COUNT(*) FROM recordings WHERE state = 'archived'", 1)
        wait_ledger(station, "SELECT COUNT(*) FROM recordings WHERE state = 'quarantined'", 1)
        (archived,), (held,) = _ids(station, "ZFY0001"), _ids(station, "ZFY0002")

        tagged = station.cli(
            "tag", archived, held, "--case-number", CASE, "--party", PARTY,
            "--stage", "execution", "--confidentiality", "commercial_secret",
        )  # fmt: skip
        assert tagged.returncode == 0, tagged.stderr
        assert MARK not in tagged.stderr + tagged.stdout
        concluded_on = datetime.now(SH).date() - timedelta(days=31)
        done = station.cli(
            "case", "conclude", CASE, "--date", str(concluded_on), "--reason", "执行完毕"
        )
        assert done.returncode == 0, done.stderr

        comp = sub.wait_for(
            lambda m: (
                m.topic == f"{P}/compliance" and m.json().get("case_files", {}).get("overdue") == 1
            ),
            timeout=30,
        ).json()
        # The sidecar written after tagging (version 1 of the metadata).
        sub.wait_until(lambda: _sidecar_version(station, archived) >= 1, timeout=30)

        # Over MQTT the party is refused, and a reply never carries it.
        reply = _send(sub, key, "tag", {"recordings": [held], "fields": {"party": "王五"}})
        assert reply["ok"] is False and "kept in the ledger only" in reply["error"]
        retag = {"recordings": [held], "fields": {"stage": "hearing"}, "reason": "听证"}
        reply = _send(sub, key, "tag", retag)
        assert reply["ok"] is True, reply
        meta = reply["result"]["tagged"][0]["metadata"]
        assert meta["stage"] == "hearing" and "party" not in meta

    validate("compliance", comp)
    case = comp["case_files"]["cases"][0]
    assert case == {
        "case_number": CASE,
        "concluded_on": str(concluded_on),
        "due_on": str(concluded_on + timedelta(days=30)),
        "status": "overdue",
        "not_archived": 1,
    }
    assert comp["case_files"]["days"] == 30

    # No message on any topic, no log record and no file in the archive holds the party.
    assert sub.messages and not [m.topic for m in sub.messages if MARK.encode() in m.payload]
    assert not [r.getMessage() for r in caplog.records if MARK in r.getMessage()]
    archive_files = [f for f in (station.data_dir / "archive").rglob("*") if f.is_file()]
    # The local store keeps each version of a document: <key>.meta.json/v000001.json, ...
    sidecars = [f for f in archive_files if ".meta.json" in str(f.relative_to(station.dir))]
    assert sidecars, archive_files
    assert not [f for f in archive_files if MARK.encode() in f.read_bytes()]
    docs = [json.loads(f.read_text(encoding="utf-8")) for f in sidecars]
    mine = [d for d in docs if d["recording_id"] == archived and d["metadata_version"] == 1]
    assert mine and mine[0]["metadata"]["case_number"] == CASE
    assert mine[0]["metadata"]["stage"] == "execution" and "party" not in mine[0]["metadata"]
    # The ledger keeps it.
    with _db(station) as db:
        fields = db.execute(
            "SELECT fields FROM metadata_versions WHERE recording_id = ? AND version = 1",
            (archived,),
        ).fetchone()[0]
    assert json.loads(fields)["party"] == PARTY


def _send(sub, key, verb: str, args: dict) -> dict:  # type: ignore[no-untyped-def]
    body = key.sign(verb, dict(args))
    before = len(sub.on(f"{P}/reply/{verb}"))
    sub.publish(f"{P}/cmd/{verb}", body)
    sub.wait_until(lambda: len(sub.on(f"{P}/reply/{verb}")) > before)
    reply = sub.on(f"{P}/reply/{verb}")[before].json()
    validate("command-reply", reply)
    return reply
