"""The compliance clock end to end: deadlines from ingest, alerts once, the daemon's thread."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.compliance.engine import ComplianceMonitor, compliance_summary
from agent.daemon.main import Daemon
from agent.ingest.ingestor import Ingestor
from fixtures.compliance import SH, FixedClock, Result, write_inventory, write_roster
from fixtures.station import Station


@pytest.mark.parametrize(
    ("ended", "due"),
    [
        # Mid-Autumn Festival, a Friday -> Tuesday.
        (datetime(2026, 9, 25, 16, 0), "2026-09-29T23:59:59.999999+08:00"),
        # National Day Oct 1-7 -> Friday Oct 9, not the make-up Saturday Oct 10.
        (datetime(2026, 9, 30, 16, 0), "2026-10-09T23:59:59.999999+08:00"),
        # A make-up Saturday before the Spring Festival break -> Wednesday Feb 25.
        (datetime(2026, 2, 14, 16, 0), "2026-02-25T23:59:59.999999+08:00"),
    ],
)
def test_ingest_computes_the_calendar_deadline_shown_by_status(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
    run_cli: Callable[..., Result],
    fixed_now: FixedClock,
    ended: datetime,
    due: str,
) -> None:
    st = make_station()
    fixed_now.set(ended.year, ended.month, ended.day, 20)
    # The clip's name says it started 2 s before `ended`; the MP4 says it lasted 2 s.
    start = ended.replace(tzinfo=SH) - timedelta(seconds=2)
    vol, clips = bodycam(out=st.mount_root / "ZFY0001", start=start, clips=1, seconds=2.0)
    assert f"_{ended:%Y%m%d}155958_" in clips[0].name
    assert run_cli(st, "ingest", str(vol)).rc == 0
    (rec,) = run_cli(st, "status", "--json").json()["recordings"]
    assert rec["end"] == ended.replace(tzinfo=SH).isoformat()
    assert rec["time_source"] == {"start": "name:zfy", "end": "container"}
    assert rec["deadline"] == due
    assert rec["deadline_met_at"] == fixed_now.now.isoformat()
    assert rec["deadline_status"] == "met"


def _outbox(st: Station, *types: str) -> list[dict]:
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    marks = ",".join("?" * len(types))
    rows = conn.execute(f"SELECT payload FROM outbox WHERE type IN ({marks}) ORDER BY seq", types)
    return [json.loads(r[0]) for r in rows]


@pytest.fixture
def undocked(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
    fixed_now: FixedClock,
    tmp_path: Path,
) -> Callable[..., tuple[Station, Path]]:
    """A recorder docked Friday 2026-09-25 17:00 and pulled before anything was copied."""

    def make(extra: str = "") -> tuple[Station, Path]:
        st = make_station(extra)
        vol, _ = bodycam(
            out=tmp_path / "ZFY0001",
            start=datetime(2026, 9, 25, 16, 0, tzinfo=SH),
            clips=1,
            seconds=1.0,
        )
        fixed_now.set(2026, 9, 25, 17)
        ing = Ingestor(st.context())
        ing.register_volume(vol)
        fixed_now.set(2026, 9, 25, 17, 5)
        ing.undock(vol)
        return st, vol

    return make


def test_deadline_alerts_are_emitted_once_each(
    undocked: Callable[..., tuple[Station, Path]], fixed_now: FixedClock
) -> None:
    st, _ = undocked("[compliance]\nwarn_before_hours = 12\n")
    mon = ComplianceMonitor(st.context())
    fixed_now.set(2026, 9, 29, 11, 59)  # due 09-29 23:59:59: not yet within 12 h
    mon.step()
    assert _outbox(st, "deadline.at_risk", "deadline.missed") == []
    fixed_now.set(2026, 9, 29, 12, 0)
    mon.step()
    mon.step()
    fixed_now.set(2026, 9, 30, 0, 0)
    mon.step()
    mon.step()
    alerts = _outbox(st, "deadline.at_risk", "deadline.missed")
    assert [a["type"] for a in alerts] == ["deadline.at_risk", "deadline.missed"]
    assert alerts[1]["deadline"] == "2026-09-29T23:59:59.999999+08:00"
    assert (alerts[1]["serial"], alerts[1]["officer"], alerts[1]["state"]) == (
        "ZFY0001",
        "100001",
        "discovered",
    )
    assert mon.last_summary is not None
    assert mon.last_summary["deadlines"] == {"open": 1, "due": 0, "overdue": 1}
    assert mon.last_summary["next_deadline"] is None
    # A new monitor (daemon restart) does not repeat them: the ledger remembers.
    ComplianceMonitor(st.context()).step()
    assert len(_outbox(st, "deadline.at_risk", "deadline.missed")) == 2


def test_recorder_not_docked_for_n_working_days(
    undocked: Callable[..., tuple[Station, Path]], fixed_now: FixedClock
) -> None:
    st, vol = undocked("[compliance]\nnot_docked_working_days = 2\n")
    mon = ComplianceMonitor(st.context())
    fixed_now.set(2026, 9, 29, 23, 59)  # Mon 28 and Tue 29 are the 2 working days
    mon.step()
    assert _outbox(st, "recorder.not_docked") == []
    fixed_now.set(2026, 9, 30, 0, 1)
    mon.step()
    mon.step()
    (ev,) = _outbox(st, "recorder.not_docked")
    assert (ev["serial"], ev["last_seen"], ev["working_days"]) == (
        "ZFY0001",
        "2026-09-25T17:05:00+08:00",
        2,
    )
    assert compliance_summary(st.context())["recorders_not_docked"] == 1
    # Docked again and pulled again: a new absence, a new alert later.
    ing = Ingestor(st.context())
    ing.register_volume(vol)
    assert compliance_summary(st.context())["recorders_not_docked"] == 0
    ing.undock(vol)
    fixed_now.set(2026, 10, 12, 0, 1)  # Oct 9 and the make-up Saturday Oct 10 have passed
    mon.step()
    assert len(_outbox(st, "recorder.not_docked")) == 2


def test_recorder_in_repair_is_not_reported_missing(
    undocked: Callable[..., tuple[Station, Path]], fixed_now: FixedClock, tmp_path: Path
) -> None:
    inv = write_inventory(tmp_path / "inv.csv", [("ZFY0001", "U1", "维修")])
    st, _ = undocked(f'[inventory]\nfile = "{inv}"\n')
    fixed_now.set(2026, 10, 20, 12)
    assert compliance_summary(st.context())["recorders_not_docked"] == 0


def test_compliance_summary_is_the_mqtt_payload(
    undocked: Callable[..., tuple[Station, Path]], fixed_now: FixedClock, tmp_path: Path
) -> None:
    roster = write_roster(tmp_path / "roster.csv", {"U1": 6, "U2": 2})
    inv = write_inventory(
        tmp_path / "inv.csv", [("ZFY0001", "U1", "in_service"), ("ZFY0002", "U3", "in_service")]
    )
    st, _ = undocked(
        f'[roster]\nfile = "{roster}"\n[inventory]\nfile = "{inv}"\n'
        "[compliance]\nuntagged_after_hours = 72\n"
    )
    fixed_now.set(2026, 9, 27, 12)
    doc = compliance_summary(st.context())
    assert doc["station"] == "test-station"
    assert doc["at"] == "2026-09-27T12:00:00+08:00"
    assert doc["deadlines"] == {"open": 1, "due": 0, "overdue": 0}
    assert doc["next_deadline"] == "2026-09-29T23:59:59.999999+08:00"
    assert (doc["untagged"], doc["untagged_overdue"], doc["untagged_after_hours"]) == (1, 0, 72.0)
    # Only this station's units (those of its roster): U3 is someone else's.
    assert [
        (u["unit"], u["required"], u["recorders_counted"], u["compliant"]) for u in doc["units"]
    ] == [("U1", 2, 1, False), ("U2", 1, 0, False)]
    assert doc["units"][0]["officers_per_recorder"] == 6.0
    assert doc["units"][0]["not_counted"] == []
    assert doc["problems"] == []
    fixed_now.set(2026, 9, 28, 16, 1)  # 72 h after the recording ended
    assert compliance_summary(st.context())["untagged_overdue"] == 1
    json.dumps(doc)  # publishable as is


def test_daemon_runs_the_compliance_thread(
    undocked: Callable[..., tuple[Station, Path]], fixed_now: FixedClock
) -> None:
    st, _ = undocked("[compliance]\ninterval_seconds = 0.1\n")
    fixed_now.set(2026, 10, 20, 12)
    daemon = Daemon(st.context())
    daemon.start()
    try:
        assert "compliance" in {t.name for t in daemon.threads}
        for _ in range(100):
            if _outbox(st, "deadline.missed"):
                break
            time.sleep(0.05)
    finally:
        daemon.shutdown()
    assert [e["type"] for e in _outbox(st, "deadline.missed")] == ["deadline.missed"]
    assert daemon.compliance.last_summary is not None
