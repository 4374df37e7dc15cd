"""Start-up recovery of interview sessions the agent was recording when it died.

1. An ffmpeg left running by the dead agent (its run.json names it) is stopped, gracefully
   first, so it finishes its segment; PDEATHSIG usually did that already.
2. A segment whose row committed but whose move into the volume did not happen is moved.
3. Every file still in a run directory is closed like any other, with the times of ffmpeg's
   segment list; one the list does not name (ffmpeg died mid-file) is *salvaged*: kept
   bit-exact, hashed, ingested and flagged, its end taken from the container or its mtime.
4. Each camera of a session that was recording gets an `agent_down` gap from the end of its
   last segment; it closes when the resumed capture delivers its first frame.
5. Each camera's volume is registered again, so ingest has everything.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.interview import segments as segs
from agent.interview import sessions as ses
from agent.interview.runs import jobs_for_run

if TYPE_CHECKING:
    from agent.config.interview import InterviewConfig
    from agent.interview.closer import Closer
    from agent.station.context import Context


class InterviewService(Protocol):
    """What recovery needs of the running service (the service calls recover(self) at start)."""

    ctx: Context
    icfg: InterviewConfig
    closer: Closer
    recovered_gaps: dict[tuple[str, str], int]


logger = logging.getLogger(__name__)


def recover(svc: InterviewService) -> None:
    ctx = svc.ctx
    work = ctx.cfg.interview_dir / "work"
    active = ctx.ledger.query(
        "SELECT * FROM interview_sessions WHERE state IN ('requested','recording','stopping')"
    )
    for row in active:
        sid = row["id"]
        for run_json in sorted((work / sid).glob("*/run-*/run.json")):
            _stop_leftover(run_json)
        for seg in ctx.ledger.query("SELECT * FROM interview_segments WHERE session_id=?", (sid,)):
            segs.finish(ctx, seg)
        n = _close_leftovers(svc, work / sid, sid)
        if n:
            logger.warning("session %s: %d segment(s) recovered after a crash", sid, n)
        if row["state"] == "recording":
            _open_down_gaps(svc, row)
        elif row["state"] == "requested":
            _expire_request(svc, row)
    for cam in svc.icfg.cameras:
        svc.closer.register(cam.id)


def _read_run(run_json: Path) -> dict[str, Any]:
    try:
        doc = json.loads(run_json.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _stop_leftover(run_json: Path) -> None:
    pid = _read_run(run_json).get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return  # gone
    if str(run_json.parent).encode() not in cmdline:
        return  # the pid was reused by an unrelated process: not ours to touch
    logger.warning(
        "stopping ffmpeg %d left running by the previous agent (%s)", pid, run_json.parent
    )
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                return
            time.sleep(0.1)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _close_leftovers(svc: InterviewService, session_dir: Path, sid: str) -> int:
    done = {
        r[0]
        for r in svc.ctx.ledger.query(
            "SELECT work_path FROM interview_segments WHERE session_id=?", (sid,)
        )
    }
    n = 0
    for run_json in sorted(session_dir.glob("*/run-*/run.json")):
        doc = _read_run(run_json)
        run_dir = run_json.parent
        camera = str(doc.get("camera") or run_dir.parent.name)
        spawn = float(doc.get("spawn_time") or run_json.stat().st_mtime)
        first = doc.get("first_wall")
        jobs = jobs_for_run(
            run_dir,
            sid,
            camera,
            spawn,
            first if isinstance(first, float | int) else None,
            True,
            set(),
            bool(doc.get("video_only")),
        )
        for _, job in jobs:
            if str(job.work_path) in done:
                continue
            if segs.close_segment(svc.ctx, job, svc.closer.ffprobe) is not None:
                n += 1
    return n


def _open_down_gaps(svc: InterviewService, row: Any) -> None:
    sid = row["id"]
    started = ses.epoch(row["started_at"]) or time.time()
    for cam in svc.icfg.cameras:
        last = svc.ctx.ledger.one(
            "SELECT MAX(end) FROM interview_segments WHERE session_id=? AND camera=?",
            (sid, cam.id),
        )
        since = ses.epoch(last[0]) if last is not None and last[0] else started
        with svc.ctx.ledger.tx() as conn:
            open_ = conn.execute(
                "SELECT id FROM interview_gaps WHERE session_id=? AND camera=? AND end IS NULL",
                (sid, cam.id),
            ).fetchall()
            for g in open_:  # left open by the crash: it ends where the record ends
                ses.close_gap(conn, g["id"], since or started)
            gid = ses.open_gap(
                conn,
                sid,
                cam.id,
                "agent_down",
                max(since or started, started),
                "the agent stopped or crashed while recording; resumed",
            )
        svc.recovered_gaps[(sid, cam.id)] = gid
        logger.warning(
            "session %s camera %s: recording resumes after the agent was down (gap from %s)",
            sid,
            cam.id,
            ses.iso_at(since or started),
        )


def _expire_request(svc: InterviewService, row: Any) -> None:
    age = time.time() - (ses.epoch(row["requested_at"]) or 0.0)
    if age > svc.icfg.start_timeout_seconds:
        with svc.ctx.ledger.tx() as conn:
            ses.fail(conn, row["id"], "the agent restarted before recording began; start again")
