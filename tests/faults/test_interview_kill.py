"""kill -9 in the middle of an interview: the record survives, the gap is reported, the
session goes on. The agent runs as a real subprocess (`evidence-agent run`)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.interview import sessions as ses
from fixtures.station import ROOT, Station


class Agent:
    """`evidence-agent run` in a subprocess, its log in a file (a pipe nobody reads fills)."""

    def __init__(self, st: Station, log: Path) -> None:
        self.st = st
        env = {k: v for k, v in os.environ.items() if k != "EVIDENCE_AGENT_CONFIG"}
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(st.config_path), "run"],
            stdout=self.log,
            stderr=self.log,
            env=env,
            cwd=ROOT,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def agents() -> Iterator[Callable[[Station, Path], Agent]]:
    started: list[Agent] = []

    def start(st: Station, log: Path) -> Agent:
        a = Agent(st, log)
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()


def _until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _service_up(st: Station) -> bool:
    state = st.data_dir / "interview" / "state.json"
    return state.exists() and time.time() - state.stat().st_mtime < 3


def _rows(st: Station, sql: str, *params: object) -> list[Any]:
    ctx = st.context()
    try:
        return [dict(r) for r in ctx.ledger.query(sql, params)]
    finally:
        ctx.close()


def _ffmpeg_pids(st: Station) -> list[int]:
    pids = []
    for run_json in (st.data_dir / "interview" / "work").glob("*/*/run-*/run.json"):
        pid = json.loads(run_json.read_text())["pid"]
        if pid and Path(f"/proc/{pid}").exists():
            pids.append(pid)
    return pids


def _begin(st: Station, agents: Callable[[Station, Path], Agent]) -> tuple[Agent, str]:
    agent = agents(st, st.dir / "agent1.log")
    _until(lambda: _service_up(st), 30, "the interview service")
    out = st.cli(
        "interview", "start", "--case", "K-1", "--interviewer", "100001", "--json", check=True
    ).stdout
    sid = json.loads(out)["session"]
    _until(lambda: len(_rows(st, "SELECT id FROM interview_segments")) >= 2, 30, "2 segments")
    return agent, sid


def _finish(st: Station, agents: Callable[[Station, Path], Agent], sid: str) -> dict[str, Any]:
    agents(st, st.dir / "agent2.log")
    _until(
        lambda: _rows(
            st, "SELECT 1 FROM interview_gaps WHERE kind='agent_down' AND end IS NOT NULL"
        ),
        30,
        "the resumed recording",
    )
    time.sleep(3)
    st.cli("interview", "stop", "--json", check=True)
    return dict(json.loads(st.cli("interview", "report", sid, "--json", check=True).stdout))


def test_kill_9_mid_session_reports_the_gap_and_continues(
    make_interview_station: Callable[..., Station],
    agents: Callable[[Station, Path], Agent],
) -> None:
    st = make_interview_station(segment_seconds=2)
    agent, sid = _begin(st, agents)
    before = _rows(st, "SELECT seq, sha256, volume, path FROM interview_segments")
    ffmpegs = _ffmpeg_pids(st)
    assert ffmpegs
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    killed_at = time.time()
    # PDEATHSIG: ffmpeg is told to finish its segment instead of recording on, orphaned
    _until(lambda: not any(Path(f"/proc/{p}").exists() for p in ffmpegs), 15, "ffmpeg to end")
    time.sleep(1.0)
    doc = _finish(st, agents, sid)

    assert doc["session"]["state"] == "closed"
    gaps = [g for g in doc["gaps"] if g["kind"] == "agent_down"]
    assert len(gaps) == 1 and len(doc["gaps"]) == 1
    gap = gaps[0]
    g_start, g_end = ses.epoch(gap["start"]), ses.epoch(gap["end"])
    assert g_start is not None and g_end is not None
    assert killed_at - 3.0 <= g_start <= killed_at + 0.5
    assert g_end >= killed_at + 1.0 and gap["duration_s"] >= 1.0
    by_seq = {s["seq"]: s for s in doc["segments"]}
    for b in before:  # the earlier segments are intact
        s = by_seq[b["seq"]]
        assert s["sha256"] == b["sha256"] and s["hash_ok"] is True
    assert any((ses.epoch(s["start"]) or 0) >= g_end - 0.01 for s in doc["segments"])
    assert doc["hashes_verified"] is True
    assert 0 < doc["coverage"] < 1


def test_kill_9_of_agent_and_ffmpeg_salvages_the_torn_segment(
    make_interview_station: Callable[..., Station],
    agents: Callable[[Station, Path], Agent],
) -> None:
    st = make_interview_station(segment_seconds=4)
    agent, sid = _begin(st, agents)
    work = st.data_dir / "interview" / "work" / sid

    def newest() -> Path:
        return max(work.glob("cam1/run-*/seg_*.ts"), key=lambda p: (p.parent.name, p.name))

    # mid-file: ffmpeg writes in 32 KiB blocks, so wait until the open file has some
    _until(lambda: newest().stat().st_size > 0, 10, "data in the open segment")
    ffmpegs = _ffmpeg_pids(st)
    # Freeze the agent so it cannot see ffmpeg go; kill ffmpeg mid-file (power-cut style: no
    # segment list entry, a torn last packet), then the agent.
    agent.proc.send_signal(signal.SIGSTOP)
    for pid in ffmpegs:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    torn = newest()
    assert torn.stat().st_size > 0
    torn_sha = hashlib.sha256(torn.read_bytes()).hexdigest()
    doc = _finish(st, agents, sid)

    salvaged = [s for s in doc["segments"] if s["salvaged"]]
    assert len(salvaged) == 1
    s = salvaged[0]
    assert s["sha256"] == torn_sha and s["hash_ok"] is True  # kept bit-exact
    assert s["ingest_state"] in ("spooled", "archived")
    assert any("salvaged" in w for w in doc["warnings"])
    assert [g["kind"] for g in doc["gaps"]] == ["agent_down"]
    assert doc["session"]["state"] == "closed"
