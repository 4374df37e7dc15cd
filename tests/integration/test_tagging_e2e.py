"""Tagging end to end: ingest a simulated recorder, tag and retag, status --json, verify."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from agent.core.errors import TagError
from agent.tagging import apply as tagging
from fixtures.compliance import SH, FixedClock, Result, write_roster
from fixtures.station import Station

START = datetime(2026, 9, 30, 9, 0, tzinfo=SH)


@pytest.fixture
def docked(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
    run_cli: Callable[..., Result],
    fixed_now: FixedClock,
    tmp_path: Path,
) -> Callable[..., tuple[Station, list[dict]]]:
    """A station that ingested a recorder with three 1 s clips starting 2026-09-30 09:00."""

    def make(extra: str = "", **spec: object) -> tuple[Station, list[dict]]:
        st = make_station(extra)
        fixed_now.set(2026, 9, 30, 18)
        vol, _ = bodycam(out=st.mount_root / "ZFY0001", start=START, seconds=1.0, **spec)
        assert run_cli(st, "ingest", str(vol), "--json").rc == 0
        recs = run_cli(st, "status", "--json").json()["recordings"]
        return st, sorted(recs, key=lambda r: r["start"])

    return make


def test_tag_retag_status_shows_current_and_history_and_verify_passes(
    docked: Callable[..., tuple[Station, list[dict]]],
    run_cli: Callable[..., Result],
    fixed_now: FixedClock,
) -> None:
    st, recs = docked()
    first = recs[0]
    assert first["metadata"] is None and first["metadata_version"] == 0
    assert first["deadline_status"] == "met"

    fixed_now.set(2026, 10, 1, 9)
    r = run_cli(
        st,
        "tag",
        first["id"],
        "--case-number",
        "环罚〔2026〕12号",
        "--capture-place",
        "某化工厂东门",
        "--proves",
        "现场检查过程",
        "--operator",
        "100001",
    )
    assert r.rc == 0, r.err
    fixed_now.set(2026, 10, 2, 9)
    # Retag by SHA-256 prefix: a correction of a set value needs a reason.
    r = run_cli(
        st, "tag", first["sha256"][:12], "--case-number", "环罚〔2026〕13号", "--operator", "100002"
    )
    assert r.rc == 65 and "needs a reason" in r.err
    r = run_cli(
        st,
        "tag",
        first["sha256"][:12],
        "--case-number",
        "环罚〔2026〕13号",
        "--operator",
        "100002",
        "--reason",
        "案件编号录入错误",
    )
    assert r.rc == 0, r.err

    doc = run_cli(st, "status", "--json", "--history").json()
    rec = next(x for x in doc["recordings"] if x["id"] == first["id"])
    assert rec["metadata_version"] == 2
    assert rec["metadata"]["case_number"] == "环罚〔2026〕13号"
    assert rec["metadata"]["capture_place"] == "某化工厂东门"  # kept from version 1
    # Version 1 carries what the recording itself says.
    assert rec["metadata"]["serial"] == "ZFY0001"
    assert rec["metadata"]["officer_id"] == rec["metadata"]["collector"] == "100001"
    assert rec["metadata"]["capture_time"] == "2026-09-30T09:00:00+08:00"
    hist = rec["metadata_history"]
    assert [h["version"] for h in hist] == [1, 2]
    assert hist[0]["fields"]["case_number"] == "环罚〔2026〕12号"
    assert (hist[0]["actor"], hist[0]["origin"], hist[0]["reason"]) == ("100001", "cli", None)
    assert (hist[1]["actor"], hist[1]["reason"]) == ("100002", "案件编号录入错误")
    assert hist[1]["at"].startswith("2026-10-02T09:00:00")
    # Without --history the document stays small; other recordings are untouched.
    plain = run_cli(st, "status", "--json").json()["recordings"]
    assert all("metadata_history" not in x for x in plain)
    assert [x["metadata_version"] for x in plain if x["id"] != first["id"]] == [0, 0]

    shown = run_cli(st, "tag", "--show", first["id"], "--json").json()
    assert shown["metadata_history"] == hist

    v = run_cli(st, "verify", "--json")
    assert v.rc == 0, v.out
    assert v.json()["ok"] is True

    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    events = conn.execute(
        "SELECT actor, json_extract(payload, '$.version') FROM custody"
        " WHERE type='metadata.tagged' AND recording_id=? ORDER BY seq",
        (first["id"],),
    ).fetchall()
    assert events == [("100001", 1), ("100002", 2)]


def test_metadata_versions_cannot_be_overwritten_and_verify_catches_edits(
    docked: Callable[..., tuple[Station, list[dict]]], run_cli: Callable[..., Result]
) -> None:
    st, recs = docked(clips=1)
    assert run_cli(st, "tag", recs[0]["id"], "--case-number", "C1", "--operator", "o1").rc == 0
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE metadata_versions SET fields='{}'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM metadata_versions")
    # Someone with raw access drops the guard and rewrites history: verify says so.
    conn.execute("DROP TRIGGER metadata_versions_no_update")
    conn.execute("""UPDATE metadata_versions SET fields='{"case_number":"FORGED"}'""")
    conn.commit()
    v = run_cli(st, "verify", "--json")
    assert v.rc == 1
    problems = v.json()["problems"]
    assert problems == [
        {
            "kind": "guard",
            "subject": "metadata_versions_no_update",
            "message": "append-only trigger metadata_versions_no_update is missing: the "
            "table's history can be edited or deleted unseen; restore the ledger from a "
            "backup and compare it with the archived anchors",
        },
        {
            "kind": "metadata",
            "subject": recs[0]["id"],
            "message": "metadata version 1 differs from its custody event",
        },
    ]


def test_tag_a_recorders_clips_in_a_time_range(
    docked: Callable[..., tuple[Station, list[dict]]], run_cli: Callable[..., Result]
) -> None:
    st, recs = docked(clips=3)
    # Clips start 09:00:00, 09:00:01, 09:00:02; [09:00:01, 09:00:02) selects only the second.
    r = run_cli(
        st,
        "tag",
        "--serial",
        "ZFY0001",
        "--from",
        "2026-09-30T09:00:01",
        "--to",
        "2026-09-30T09:00:02",
        "--case-number",
        "C-2",
        "--operator",
        "o1",
        "--json",
    )
    assert r.rc == 0, r.err
    assert [x["recording_id"] for x in r.json()] == [recs[1]["id"]]
    # A whole day by date, listed first with --dry-run.
    r = run_cli(
        st, "tag", "--serial", "ZFY0001", "--from", "2026-09-30", "--to", "2026-09-30", "--dry-run"
    )
    assert r.out.split() == [x["id"] for x in recs]
    r = run_cli(
        st,
        "tag",
        "--serial",
        "ZFY0001",
        "--to",
        "2026-09-29",
        "--category",
        "x",
        "--operator",
        "o1",
    )
    assert r.rc == 65 and "no recordings starting in the range" in r.err
    r = run_cli(st, "tag", "--serial", "NOPE", "--category", "x", "--operator", "o1")
    assert r.rc == 65 and "no recorder with serial 'NOPE'" in r.err


def test_list_of_recordings_is_tagged_all_or_nothing(
    docked: Callable[..., tuple[Station, list[dict]]],
    run_cli: Callable[..., Result],
    tmp_path: Path,
) -> None:
    st, recs = docked(clips=3)
    listing = tmp_path / "refs.txt"
    listing.write_text(f"# morning\n{recs[0]['id']}\n{recs[2]['sha256'][:16]}\n\n", "utf-8")
    r = run_cli(
        st,
        "tag",
        "--refs-file",
        str(listing),
        recs[1]["id"],
        "ffffffffffffffff",
        "--category",
        "inspection",
        "--operator",
        "o1",
    )
    assert r.rc == 65 and "no recording whose SHA-256 starts with ffffffffffffffff" in r.err
    status = run_cli(st, "status", "--json").json()["recordings"]
    assert all(x["metadata_version"] == 0 for x in status)

    r = run_cli(
        st,
        "tag",
        "--refs-file",
        str(listing),
        recs[1]["id"],
        "--category",
        "inspection",
        "--operator",
        "o1",
        "--json",
    )
    assert r.rc == 0, r.err
    assert {x["recording_id"] for x in r.json()} == {x["id"] for x in recs}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--case-number", "2026 12"], "tagging.case_number_pattern = ^HB"),
        (["--case-number", "2026 12"], "e.g. HB-2026-0001"),
        (["--capture-time", "2026-10-21T08:00"], "is in the future"),
        (["--collector", "999999"], "collector '999999' is not an officer in the roster"),
        (["--officer-id", "nobody"], "add the officer to the roster"),
        (["--set", "weather=sunny"], "unknown metadata field 'weather'"),
        (["--importance", "urgent"], "importance 'urgent' is not one of normal"),
        (["--category", "picnic"], "category 'picnic' is not one of inspection, traffic"),
        (["--unit-id", "U 1"], "unit_id 'U 1' may contain only"),
    ],
)
def test_invalid_input_is_refused_with_a_clear_message(
    docked: Callable[..., tuple[Station, list[dict]]],
    run_cli: Callable[..., Result],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    roster = write_roster(tmp_path / "roster.csv", {"U1": 3})
    extra = f"""
[roster]
file = "{roster}"
[tagging]
case_number_pattern = '^HB-\\d{{4}}-\\d{{4}}$'
case_number_example = "HB-2026-0001"
categories = ["inspection"]
[compliance.rules]
traffic = {{ kind = "hours", hours = 24 }}
"""
    st, recs = docked(extra)
    r = run_cli(st, "tag", recs[0]["id"], *args, "--operator", "U1-000")
    assert r.rc == 65
    assert message in r.err
    assert "Traceback" not in r.err
    assert run_cli(st, "status", "--json").json()["recordings"][0]["metadata_version"] == 0
    ok = run_cli(
        st,
        "tag",
        recs[0]["id"],
        "--case-number",
        "HB-2026-0001",
        "--collector",
        "U1-001",
        "--set",
        "证明对象=现场检查",
        "--importance",
        "重要",
        "--operator",
        "U1-000",
        "--json",
    )
    assert ok.rc == 0, ok.err
    meta = ok.json()[0]["metadata"]
    assert (meta["proves"], meta["importance"], meta["collector"]) == (
        "现场检查",
        "important",
        "U1-001",
    )


def test_tag_api_is_one_call_for_the_mqtt_path(
    docked: Callable[..., tuple[Station, list[dict]]], fixed_now: FixedClock
) -> None:
    st, recs = docked(clips=2)
    ctx = st.context()
    results = tagging.tag(
        ctx,
        [r["id"] for r in recs],
        {"案件编号": "C-9", "category": "inspection"},
        actor="dispatcher-7",
        origin="mqtt",
    )
    assert [(r.version, r.changed[:1]) for r in results] == [(1, ["case_number"])] * 2
    again = tagging.tag(ctx, [recs[0]["id"]], {"case_number": "C-9"}, actor="d7", origin="mqtt")
    assert again[0].changed == [] and again[0].version == 1  # no change, no new version
    with pytest.raises(TagError, match="origin 'carrier-pigeon'"):
        tagging.tag(ctx, [recs[0]["id"]], {"case_number": "C"}, actor="x", origin="carrier-pigeon")
    with pytest.raises(TagError, match="operator"):
        tagging.tag(ctx, [recs[0]["id"]], {"case_number": "C"}, actor=" ")
    with pytest.raises(TagError, match="no fields"):
        tagging.tag(ctx, [recs[0]["id"]], {}, actor="x")
    cleared = tagging.tag(ctx, [recs[0]["id"]], {"category": None}, actor="x", reason="wrong")
    assert cleared[0].metadata is not None and cleared[0].metadata["category"] is None
    assert cleared[0].version == 2


def test_retag_to_a_category_with_another_rule_recomputes_the_deadline(
    docked: Callable[..., tuple[Station, list[dict]]],
    run_cli: Callable[..., Result],
) -> None:
    extra = '[compliance.rules]\ntraffic = { kind = "hours", hours = 24 }\n'
    st, recs = docked(extra, clips=1)
    rid = recs[0]["id"]
    assert recs[0]["deadline"] == "2026-10-09T23:59:59.999999+08:00"
    r = run_cli(st, "tag", rid, "--category", "traffic", "--operator", "o1")
    assert r.rc == 0 and "deadline now 2026-10-01T09:00:01+08:00" in r.out
    (rec,) = run_cli(st, "status", "--json").json()["recordings"]
    assert rec["deadline"] == "2026-10-01T09:00:01+08:00"
    assert rec["deadline_status"] == "met"  # stored 2026-09-30 18:00, within 24 h
    r = run_cli(
        st,
        "tag",
        rid,
        "--category",
        "inspection",
        "--reason",
        "not traffic",
        "--operator",
        "o2",
        "--json",
    )
    assert r.json()[0]["deadline"] == "2026-10-09T23:59:59.999999+08:00"
    assert r.json()[0]["deadline_recomputed"] is True
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    rows = conn.execute(
        "SELECT actor, json_extract(payload, '$.new'), json_extract(payload, '$.category')"
        " FROM custody WHERE type='deadline.recomputed' AND recording_id=? ORDER BY seq",
        (rid,),
    ).fetchall()
    assert rows == [
        ("o1", "2026-10-01T09:00:01+08:00", "traffic"),
        ("o2", "2026-10-09T23:59:59.999999+08:00", "inspection"),
    ]
    assert run_cli(st, "verify").rc == 0
