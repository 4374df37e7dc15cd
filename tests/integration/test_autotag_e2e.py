"""Tags at discovery: assignment rules from the config, sidecar JSON left on the volume."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from agent.ingest.ingestor import Ingestor
from fixtures.compliance import SH, FixedClock, Result
from fixtures.station import Station

RULES = """
[[tagging.assign]]
name = "morning-raid"
officer_id = "100001"
date_from = 2026-09-30
date_to = 2026-09-30
time_from = 08:00:00
time_to = 12:00:00
fields = { case_number = "C-MORNING", category = "traffic" }

[[tagging.assign]]
serial = "ZFY0001"
fields = { importance = "important" }

[compliance.rules]
traffic = { kind = "hours", hours = 24 }
"""


def meta(run_cli: Callable[..., Result], st: Station) -> dict[str, dict]:
    doc = run_cli(st, "status", "--json", "--history").json()
    return {r["source_path"].rsplit("/", 1)[-1]: r for r in doc["recordings"]}


def test_assignment_rules_tag_new_recordings_and_set_the_category_deadline(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
    run_cli: Callable[..., Result],
    fixed_now: FixedClock,
) -> None:
    st = make_station(RULES)
    fixed_now.set(2026, 9, 30, 20)
    # Clips at 11:59:58, 11:59:59 (inside 08-12) and 12:00:00 (outside).
    vol, clips = bodycam(
        out=st.mount_root / "ZFY0001",
        start=datetime(2026, 9, 30, 11, 59, 58, tzinfo=SH),
        seconds=1.0,
    )
    assert run_cli(st, "ingest", str(vol)).rc == 0
    recs = meta(run_cli, st)
    inside, outside = recs[clips[0].name], recs[clips[2].name]
    assert inside["metadata"]["case_number"] == "C-MORNING"
    assert inside["metadata"]["importance"] == "important"
    assert [(h["actor"], h["origin"]) for h in inside["metadata_history"]] == [
        ("rule:morning-raid", "rule"),
        ("rule:#2", "rule"),
    ]
    # traffic = 24 h: the deadline is the end plus 24 hours, not 2 working days.
    assert inside["end"] == "2026-09-30T11:59:59+08:00"
    assert inside["deadline"] == "2026-10-01T11:59:59+08:00"
    assert outside["metadata"]["case_number"] is None
    assert outside["metadata"]["importance"] == "important"
    assert outside["deadline"] == "2026-10-09T23:59:59.999999+08:00"
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    (payload,) = conn.execute(
        "SELECT payload FROM custody WHERE type='deadline.recomputed' AND recording_id=?",
        (inside["id"],),
    ).fetchone()
    body = json.loads(payload)
    assert (body["old"], body["new"]) == ("2026-10-09T23:59:59.999999+08:00", inside["deadline"])
    assert body["rule"] == {"kind": "hours", "hours": 24}
    # Rules apply at discovery only: a rescan adds nothing.
    ctx = st.context()
    Ingestor(ctx).register_volume(vol)
    assert meta(run_cli, st)[clips[0].name]["metadata_version"] == 2


def test_sidecars_per_clip_and_per_volume(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
    run_cli: Callable[..., Result],
    fixed_now: FixedClock,
) -> None:
    st = make_station()
    fixed_now.set(2026, 9, 30, 20)
    vol, clips = bodycam(
        out=st.mount_root / "ZFY0001", start=datetime(2026, 9, 30, 9, 0, tzinfo=SH), seconds=1.0
    )
    (vol / "TAGS.JSON").write_text(
        json.dumps(
            {
                "schema": "evidence-agent/tags/1",
                "actor": "100001",
                "entries": [
                    {"fields": {"采集地点": "某化工厂", "case_number": "C-1"}},
                    {
                        "from": "2026-09-30T09:00:01",
                        "to": "2026-09-30T10:00",
                        "fields": {"证明对象": "排污口取样"},
                    },
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    # The clip's own sidecar, written by a Chinese Windows tool (GBK), wins over TAGS.JSON.
    own = clips[2].with_suffix(".json")
    own.write_bytes(
        json.dumps(
            {"fields": {"case_number": "C-2", "proves": "拒绝检查"}, "reason": "现场补录"},
            ensure_ascii=False,
        ).encode("gbk")
    )
    assert run_cli(st, "ingest", str(vol)).rc == 0
    recs = meta(run_cli, st)
    first, second, third = (recs[c.name] for c in clips)
    assert (first["metadata"]["case_number"], first["metadata"]["capture_place"]) == (
        "C-1",
        "某化工厂",
    )
    assert first["metadata"]["proves"] is None
    assert second["metadata"]["proves"] == "排污口取样"
    assert (third["metadata"]["case_number"], third["metadata"]["proves"]) == ("C-2", "拒绝检查")
    assert third["metadata"]["capture_place"] == "某化工厂"
    last = third["metadata_history"][-1]
    assert (last["actor"], last["origin"], last["reason"]) == ("sidecar", "sidecar", "现场补录")
    assert first["metadata_history"][0]["reason"] == "sidecar TAGS.JSON entries[0]"

    # An operator corrects the case number; rescans do not undo it ...
    assert (
        run_cli(
            st, "tag", first["id"], "--case-number", "C-1b", "--reason", "typo", "--operator", "o9"
        ).rc
        == 0
    )
    ing = Ingestor(st.context())
    ing.register_volume(vol)
    ing.register_volume(vol)
    assert meta(run_cli, st)[clips[0].name]["metadata"]["case_number"] == "C-1b"
    # ... but an edited sidecar is applied, once.
    own.write_text(json.dumps({"fields": {"case_number": "C-3"}}), encoding="utf-8")
    ing.register_volume(vol)
    ing.register_volume(vol)
    third = meta(run_cli, st)[clips[2].name]
    assert third["metadata"]["case_number"] == "C-3"
    # TAGS.JSON entries 0 and 1, its own sidecar, then the edited one.
    assert [h["version"] for h in third["metadata_history"]] == [1, 2, 3, 4]
    assert run_cli(st, "verify").rc == 0


def test_bad_sidecar_is_a_volume_issue_and_ingest_goes_on(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
    run_cli: Callable[..., Result],
    fixed_now: FixedClock,
) -> None:
    st = make_station()
    fixed_now.set(2026, 9, 30, 20)
    vol, clips = bodycam(
        out=st.mount_root / "ZFY0001",
        start=datetime(2026, 9, 30, 9, 0, tzinfo=SH),
        seconds=1.0,
        clips=2,
    )
    (vol / "TAGS.JSON").write_text('{"entries": [{"fields": {"case_number": "C 1"}}]', "utf-8")
    clips[1].with_suffix(".json").write_text(
        '{"fields": {"capture_time": "2027-01-01T00:00"}}', "utf-8"
    )
    r = run_cli(st, "ingest", str(vol), "--json")
    assert r.rc == 0
    issues = {(i["path"], i["kind"]): i["reason"] for i in r.json()["issues"]}
    assert "tag sidecar not read" in issues[("TAGS.JSON", "error")]
    sidecar = clips[1].with_suffix(".json").relative_to(vol).as_posix()
    reason = issues[(sidecar, "error")]
    assert f"not applied to {clips[1].relative_to(vol).as_posix()}" in reason
    assert "capture_time 2027-01-01T00:00:00+08:00 is in the future" in reason
    recs = meta(run_cli, st)
    assert all(r["state"] == "spooled" and r["metadata_version"] == 0 for r in recs.values())
    # The sidecar is not evidence: never erased, just listed.
    assert (vol / "TAGS.JSON").exists()
