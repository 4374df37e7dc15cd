"""Issue 13: what `status`, a compliance tick and an MQTT publish run never walks history.

A 50,000-recording ledger is built once per session through the project's own write
functions (bench/scale_ledger.py). Every statement the code under test runs is captured
with `set_trace_callback`, then `EXPLAIN QUERY PLAN` after `ANALYZE` must show no SCAN of
recordings, custody, outbox or metadata_versions (covering-index scans included).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from agent.actions import status
from agent.actions.views import print_status
from agent.compliance import report
from agent.compliance.engine import ComplianceMonitor
from agent.ledger import paths
from agent.mqtt.service import MqttService
from agent.station.context import Context
from bench.scale_ledger import build
from tests.fixtures.station import Station

N = 50_000
BIG = ("recordings", "custody", "outbox", "metadata_versions")


@pytest.fixture(scope="session")
def scale_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "ledger.sqlite3"
    t0 = time.monotonic()
    build(path, N, recorders=500)
    elapsed = time.monotonic() - t0
    assert elapsed < 60, f"building the {N}-row ledger took {elapsed:.1f} s (limit 60 s)"
    conn = sqlite3.connect(path)
    conn.execute("ANALYZE")
    conn.close()
    return path


@pytest.fixture
def big_station(
    make_station: Callable[..., Station], scale_ledger: Path, broker: object
) -> Iterator[tuple[Station, Context]]:
    st = make_station(extra=f'[mqtt]\nurl = "{broker.url}"\n')  # type: ignore[attr-defined]
    st.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(scale_ledger, st.data_dir / "ledger.sqlite3")
    # A station that has run before: its roots carry their markers (first-start work).
    cfg = st.cfg()
    for name, root in paths.roots(cfg).items():
        root.mkdir(parents=True, exist_ok=True)
        paths.write_marker(root, cfg.station.id, name)
    ctx = st.context()
    yield st, ctx
    ctx.close()


class Trace:
    """Every statement run on one connection, for EXPLAIN QUERY PLAN afterwards."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def __enter__(self) -> Trace:
        self.conn.set_trace_callback(self.statements.append)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.conn.set_trace_callback(None)

    def scans(self) -> list[tuple[str, str]]:
        bad = []
        for sql in {s.strip() for s in self.statements}:
            if not re.match(r"(?is)^(SELECT|WITH)\b", sql):
                continue
            for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql):
                detail = row[3]
                m = re.match(r"SCAN (\w+)", detail)
                if m and _table(sql, m.group(1)) in BIG:
                    bad.append((detail, sql))
        return bad


def _table(sql: str, name: str) -> str:
    """The table an alias in a plan line stands for."""
    m = re.search(rf"\b(?:FROM|JOIN)\s+(\w+)\s+(?:AS\s+)?{name}\b", sql, re.I)
    if name in BIG or m is None:
        return name
    return m.group(1)


def test_status_compliance_and_publish_never_scan_history(
    big_station: tuple[Station, Context],
) -> None:
    st, ctx = big_station
    conn = ctx.ledger.connect()
    with Trace(conn) as trace:
        doc = status.document(ctx, limit=100)
        print_status(doc, Console(file=io.StringIO(), width=80))
        paged = status.document(ctx, limit=20, before=doc["next_before"], state="archived")
        filtered = status.document(ctx, limit=5, recorder="BC000007", since="2000-01-01")
        ComplianceMonitor(ctx).step()
        service = MqttService(ctx)
        service.start()
        try:
            deadline = time.monotonic() + 20
            while not service.conn.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert service.conn.connected.is_set(), "no connection to the test broker"
            sent = service.publisher.publish(force=True)
        finally:
            service.stop(0.5)
    assert sent >= 3
    assert doc["recordings_total"] == N and doc["truncated"] is True
    assert len(doc["recordings"]) == 100
    assert paged["recordings"] and all(r["state"] == "archived" for r in paged["recordings"])
    assert paged["recordings"][0]["id"] < doc["next_before"] or (
        paged["recordings"][0]["start"] <= doc["recordings"][-1]["start"]
    )
    assert filtered["recordings"] and {r["serial"] for r in filtered["recordings"]} == {"BC000007"}
    assert len(trace.statements) > 10
    scans = trace.scans()
    assert not scans, "full scans of history:\n" + "\n".join(f"{d}: {s}" for d, s in scans)


def test_report_for_a_month_never_scans_history(big_station: tuple[Station, Context]) -> None:
    """`report --json` for a month: one aggregate over an index range of when recordings
    were made, and the rows needing attention; no SCAN of history (issue 13)."""
    st, ctx = big_station
    conn = ctx.ledger.connect()
    newest = conn.execute(
        "SELECT MAX(COALESCE(end_corrected, end, start_corrected, start, discovered_at))"
        " FROM recordings"
    ).fetchone()[0]
    last = datetime.fromisoformat(newest).astimezone(ctx.calendar.tz).date()
    first = last - timedelta(days=30)
    with Trace(conn) as trace:
        doc = report.build(ctx, start=first, end=last)
    # About a month of the year's N recordings, and the listing bounded.
    assert N // 15 < doc["deadlines"]["total"] < N // 8
    assert doc["untagged"]["count"] > 0 and len(doc["recordings"]) == report.LIMIT
    assert doc["truncated"] is True
    assert any("GROUP BY" in s for s in trace.statements)
    scans = trace.scans()
    assert not scans, "report scans history:\n" + "\n".join(f"{d}: {s}" for d, s in scans)
    t0 = time.monotonic()
    proc = st.cli("report", "--json", "--from", first.isoformat(), "--to", last.isoformat())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["deadlines"] == doc["deadlines"]
    assert time.monotonic() - t0 < 10


def test_status_defaults_to_100_and_json_counts(big_station: tuple[Station, Context]) -> None:
    st, _ctx = big_station
    t0 = time.monotonic()
    proc = st.cli("status", "--json", check=True)
    elapsed = time.monotonic() - t0
    doc = json.loads(proc.stdout)
    assert len(doc["recordings"]) == 100
    assert doc["recordings_total"] == N and doc["truncated"] is True
    starts = [r["start"] for r in doc["recordings"]]
    assert starts == sorted(starts, reverse=True)
    assert doc["open_work"]["spooled"] == 100 and doc["open_work"]["failed"] == 100
    assert elapsed < 10, f"status --json took {elapsed:.1f} s"


def test_status_limit_0_streams_everything(big_station: tuple[Station, Context]) -> None:
    st, _ctx = big_station
    proc = st.cli("status", "--json", "--limit", "0", "--state", "failed", check=True)
    doc = json.loads(proc.stdout)
    assert doc["recordings_total"] == 100 and doc["truncated"] is False
    assert len(doc["recordings"]) == 100
    assert {r["state"] for r in doc["recordings"]} == {"failed"}


def test_status_table_keeps_serial_state_deadline_at_80_columns(
    big_station: tuple[Station, Context],
) -> None:
    _st, ctx = big_station
    doc = status.document(ctx, limit=5, state="failed")
    out = io.StringIO()
    print_status(doc, Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    for r in doc["recordings"]:
        line = next(line for line in text.splitlines() if r["serial"] in line)
        assert "failed" in line
        assert r["deadline"][:10] in line


def test_idle_daemon_loops_never_scan_history(big_station: tuple[Station, Context]) -> None:
    """Every loop body runs once at start: none of them may walk all recordings."""
    from agent.daemon.main import Daemon

    _st, ctx = big_station
    statements: list[str] = []
    connect = ctx.ledger.connect

    def traced() -> sqlite3.Connection:
        conn = connect()
        conn.set_trace_callback(statements.append)
        return conn

    ctx.ledger.connect = traced  # type: ignore[method-assign]
    d = Daemon(ctx)
    d.start()
    try:
        time.sleep(4.0)
    finally:
        d.shutdown()
    ctx.ledger.connect = connect  # type: ignore[method-assign]
    assert any("recording_counts" in s for s in statements), "the MQTT state was not built"
    check = sqlite3.connect(ctx.ledger.path)
    try:
        trace = Trace(check)
        trace.statements = statements
        scans = trace.scans()
    finally:
        check.close()
    assert not scans, "idle loops scan history:\n" + "\n".join(f"{d}: {s}" for d, s in scans)
