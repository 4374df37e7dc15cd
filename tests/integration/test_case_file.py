"""The record's context and the case file (issue 16, item 4), through the CLI and the gate:
confidentiality, party and stage on `tag`; `case conclude|show`; cases due and overdue in
`report`; the party kept out of the custody log's shipped form; the index the check uses."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fixtures.access import HEADER
from fixtures.compliance import SH, FixedClock, Result
from fixtures.station import Station

START = datetime(2026, 9, 30, 9, 0, tzinfo=SH)
PARTY = "张三 PARTYMARK7 某化工有限公司"
CASE = "环罚〔2026〕12号"


@pytest.fixture
def docked(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
    run_cli: Callable[..., Result],
    fixed_now: FixedClock,
) -> tuple[Station, list[dict]]:
    """A station that ingested three 1 s clips starting 2026-09-30 09:00 (not archived)."""
    st = make_station()
    fixed_now.set(2026, 9, 30, 18)
    vol, _ = bodycam(out=st.mount_root / "ZFY0001", start=START, seconds=1.0)
    assert run_cli(st, "ingest", str(vol), "--json").rc == 0
    recs = run_cli(st, "status", "--json").json()["recordings"]
    return st, sorted(recs, key=lambda r: r["start"])


def _db(st: Station) -> sqlite3.Connection:
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    conn.row_factory = sqlite3.Row
    return conn


def test_context_fields_are_validated_versioned_and_the_party_stays_in_the_table(
    docked: tuple[Station, list[dict]], run_cli: Callable[..., Result], fixed_now: FixedClock
) -> None:
    st, recs = docked
    rid = recs[0]["id"]
    fixed_now.set(2026, 10, 1, 9)
    bad = run_cli(st, "tag", rid, "--stage", "arrest")
    assert bad.rc == 65 and "stage 'arrest' is not one of" in bad.err and "hearing" in bad.err
    bad = run_cli(st, "tag", rid, "--confidentiality", "top")
    assert bad.rc == 65 and "personal_privacy" in bad.err
    bad = run_cli(st, "tag", rid, "--party", "x" * 201)
    assert bad.rc == 65 and "at most 200" in bad.err
    bad = run_cli(st, "tag", rid, "--party", "A\x07" + PARTY)
    assert bad.rc == 65 and "control characters" in bad.err and "PARTYMARK7" not in bad.err
    bad = run_cli(st, "tag", rid, "--party", "某公司\n" + PARTY)
    assert bad.rc == 65 and "line break" in bad.err and "PARTYMARK7" not in bad.err

    ok = run_cli(
        st, "tag", rid, "--case-number", CASE, "--party", PARTY,
        "--set", "执法环节=现场检查", "--confidentiality", "个人隐私",
    )  # fmt: skip
    assert ok.rc == 0, ok.err
    shown = run_cli(st, "tag", "--show", rid, "--json").json()
    meta = shown["metadata"]
    assert (meta["party"], meta["stage"], meta["confidentiality"]) == (
        PARTY,
        "site_inspection",
        "personal_privacy",
    )
    shown_table = run_cli(st, "tag", "--show", rid)
    assert "现场检查" in shown_table.out and "个人隐私" in shown_table.out
    # Changing the party needs a reason, and the refusal does not quote the old value (it
    # may travel as an MQTT reply).
    again = run_cli(st, "tag", rid, "--party", "李四")
    assert again.rc == 65 and "needs a reason" in again.err and "PARTYMARK7" not in again.err
    assert run_cli(st, "tag", rid, "--party", "李四", "--reason", "当事人更正").rc == 0

    with _db(st) as db:
        payloads = [r[0] for r in db.execute("SELECT payload FROM custody")]
        salts = [r[0] for r in db.execute("SELECT party_salt FROM metadata_versions")]
    # The custody log (shipped to the archive in segments) holds a salted digest, not names.
    assert not any("PARTYMARK7" in p or "李四" in p for p in payloads)
    tagged = [json.loads(p) for p in payloads if '"fields"' in p]
    assert all(t["fields"]["party"].startswith("sha256:") for t in tagged)
    assert len(set(salts)) == 2 and None not in salts
    # ... and `verify` still checks the table against the log.
    v = run_cli(st, "verify", "--json")
    assert v.rc == 0 and v.json()["ok"] is True, v.out
    with _db(st) as db:
        db.execute("DROP TRIGGER metadata_versions_no_update")
        db.execute(
            "UPDATE metadata_versions SET fields = json_set(fields, '$.party', '王五')"
            " WHERE version = 2"
        )
    v = run_cli(st, "verify", "--json")
    assert v.rc != 0 and "differs from its custody event" in v.out


def test_a_case_concluded_31_days_ago_with_a_recording_not_archived_is_overdue(
    docked: tuple[Station, list[dict]], run_cli: Callable[..., Result], fixed_now: FixedClock
) -> None:
    st, recs = docked
    fixed_now.set(2026, 10, 1, 9)
    assert run_cli(st, "tag", recs[0]["id"], recs[1]["id"], "--case-number", CASE).rc == 0
    assert run_cli(st, "tag", recs[2]["id"], "--case-number", "C-2").rc == 0
    fixed_now.set(2026, 11, 10, 10)
    today = fixed_now.now.date()

    future = run_cli(st, "case", "conclude", CASE, "--date", "2026-11-11", "--reason", "x")
    assert future.rc == 65 and "in the future" in future.err
    r = run_cli(
        st, "case", "conclude", CASE, "--date", str(today - timedelta(days=31)),
        "--reason", "执行完毕", "--json",
    )  # fmt: skip
    assert r.rc == 0, r.err
    assert r.json()["status"] == "overdue" and r.json()["due_on"] == "2026-11-09"
    r = run_cli(
        st, "case", "conclude", "C-2", "--date", str(today - timedelta(days=30)),
        "--reason", "结案", "--json",
    )  # fmt: skip
    assert r.json()["status"] == "due" and r.json()["days_left"] == 0

    doc = run_cli(st, "report", "--json").json()
    cases = {c["case_number"]: c for c in doc["case_files"]["cases"]}
    assert (doc["case_files"]["overdue"], doc["case_files"]["due"]) == (1, 1)
    assert cases[CASE]["status"] == "overdue" and cases[CASE]["not_archived"] == 2
    assert cases[CASE]["concluded_on"] == "2026-10-10" and cases["C-2"]["status"] == "due"
    zh = run_cli(st, "report", "--csv", "--lang", "zh", "--section", "cases")
    rows = list(csv.reader(io.StringIO(zh.out.lstrip("\ufeff"))))
    assert rows[0][:4] == ["案件编号", "执行终结日期", "归档期限", "状态"]
    assert [CASE, "2026-10-10", "2026-11-09", "已逾期", "2", "2"] in rows
    table = run_cli(st, "report", "--lang", "en")
    assert "Case files" in table.out and "overdue" in table.out

    # A new date is a new version with its reason; the same date again changes nothing.
    r = run_cli(st, "case", "conclude", CASE, "--date", "2026-10-20", "--reason", "日期更正")
    assert r.rc == 0 and "case file due 2026-11-19" in r.out
    same = run_cli(st, "case", "conclude", CASE, "--date", "2026-10-20", "--reason", "再次")
    assert "no change" in same.out
    shown = run_cli(st, "case", "show", CASE, "--json").json()
    assert [(h["version"], h["concluded_on"], h["reason"]) for h in shown["history"]] == [
        (1, "2026-10-10", "执行完毕"),
        (2, "2026-10-20", "日期更正"),
    ]
    assert shown["history"][0]["actor"] == "root" and shown["history"][0]["via"] == "cli"
    assert {r["id"] for r in shown["recording_list"]} == {recs[0]["id"], recs[1]["id"]}
    assert shown["status"] == "due"
    with _db(st) as db:
        events = db.execute(
            "SELECT actor, payload FROM custody WHERE type = 'case.concluded' ORDER BY seq"
        ).fetchall()
        grants = db.execute(
            "SELECT COUNT(*) FROM custody WHERE type = 'access.granted'"
            " AND json_extract(payload, '$.action') = 'case.conclude'"
        ).fetchone()[0]
    assert [json.loads(e["payload"])["previous"] for e in events] == [None, None, "2026-10-10"]
    assert events[0]["actor"] == "root" and grants == 4
    audit = run_cli(st, "audit", "--kind", "case.concluded", "--lang", "en", "--csv")
    assert f"recorded case {CASE} as concluded on 2026-10-20 (version 2" in audit.out

    # Once every recording of the case is archived, its file is no longer due.
    with _db(st) as db:
        db.execute(
            "UPDATE recordings SET archived_at = '2026-11-10T10:00:00+08:00' WHERE id IN (?, ?)",
            (recs[0]["id"], recs[1]["id"]),
        )
    doc = run_cli(st, "report", "--json").json()
    assert {c["case_number"]: c["status"] for c in doc["case_files"]["cases"]}[CASE] == ("archived")


def test_only_a_custodian_concludes_a_case_and_a_refusal_is_recorded(
    docked: tuple[Station, list[dict]], run_cli: Callable[..., Result]
) -> None:
    st, recs = docked
    (st.dir / "operators.csv").write_text(
        HEADER + "100001,root,警员甲,officer,JZ-1,1\n", encoding="utf-8"
    )
    r = run_cli(st, "case", "conclude", CASE, "--date", "2026-09-30", "--reason", "执行完毕")
    assert r.rc == 77 and "needs role custodian" in r.err
    with _db(st) as db:
        assert db.execute("SELECT COUNT(*) FROM case_versions").fetchone()[0] == 0
        refused = db.execute(
            "SELECT payload FROM custody WHERE type = 'access.refused' ORDER BY seq DESC"
        ).fetchone()
    assert json.loads(refused[0])["action"] == "case.conclude"
    assert json.loads(refused[0])["operator"] == "100001"
    bad = run_cli(st, "case", "conclude", "a/b", "--date", "2026-09-30", "--reason", "x")
    assert bad.rc == 65 and "tagging.case_number_pattern" in bad.err


def test_the_case_file_check_uses_indexes_not_scans(
    docked: tuple[Station, list[dict]],
) -> None:
    from agent.compliance.casefile import CASE_FILES_SQL, CASE_RECORDINGS_SQL, OPEN_CASES_SQL

    st, _ = docked
    with _db(st) as db:
        plans = [
            " | ".join(r["detail"] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params))
            for sql, params in ((CASE_FILES_SQL, ()), (CASE_RECORDINGS_SQL, (CASE,)))
        ]
    for plan in plans:
        assert "metadata_versions_case" in plan, plan
        assert "SCAN m" not in plan and "SCAN r" not in plan, plan
    # The MQTT payload starts from the recordings not archived yet (open work only).
    with _db(st) as db:
        plan = " | ".join(r["detail"] for r in db.execute("EXPLAIN QUERY PLAN " + OPEN_CASES_SQL))
    assert "SEARCH r USING INDEX recordings_not_archived" in plan, plan
    assert "SCAN m" not in plan, plan
