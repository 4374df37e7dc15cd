"""The interview service inside the daemon (`station.role = "interview"`).

Threads: `interview` (this loop: picks up session requests from the ledger, starts and stops
the cameras, keeps the panel lamp truthful, writes the heartbeat/state file the CLI reads),
`interview-close` (hashes closed segments, chains them in custody, hands them to ingest),
`panel` (the serial control panel), and one `interview-<camera>` per camera while recording.

Requests reach it through the ledger (CLI, MQTT and panel all call agent.interview.commands),
so a request made while the daemon restarts is not lost, and the daemon's own requests wake
this loop at once instead of at the next poll.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.core import clock
from agent.ingest.ingestor import Ingestor
from agent.interview import commands, ffcmd, recovery
from agent.interview import segments as segs
from agent.interview import sessions as ses
from agent.interview.camera import CameraRun
from agent.interview.capture import CaptureFactory, audio_source
from agent.interview.closer import Closer
from agent.interview.coverage import session_coverage
from agent.interview.fallback import WARNING
from agent.ledger import events
from agent.station.context import Context

logger = logging.getLogger(__name__)

TICK = 0.2
STATE_FILE = "state.json"
Supervise = Callable[[str, Callable[[], float]], threading.Thread]


class InterviewService:
    def __init__(
        self,
        ctx: Context,
        ingestor: Ingestor | None = None,
        ingest_wake: threading.Event | None = None,
    ) -> None:
        self.ctx = ctx
        self.icfg = ctx.cfg.interview
        self.room = self.icfg.room or ctx.station_id
        self.ingestor = ingestor or Ingestor(ctx)
        self.ingest_wake = ingest_wake
        self.wake = threading.Event()
        self.closer = Closer(ctx, self.ingestor, ingest_wake, shutil.which(self.icfg.ffprobe))
        self.cameras: dict[str, CameraRun] = {}
        self.session_id: str | None = None
        self.video_only_gaps: dict[str, int] = {}
        self.recovered_gaps: dict[tuple[str, str], int] = {}  # (session, camera) -> gap id
        self.ffmpeg = shutil.which(self.icfg.ffmpeg)
        self.font = self.icfg.font or ffcmd.find_cjk_font()
        self.make_capture = CaptureFactory(
            self.icfg, self.room, ctx.cfg.station.timezone, self.ffmpeg, self.font
        )
        self.panel: Any = None
        self.lamp_wanted = False
        self.dir = ctx.cfg.interview_dir
        self._last_state = 0.0
        self._state_failing = False

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, supervise: Supervise) -> list[threading.Thread]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        if not self.icfg.cameras:
            logger.error(
                "station.role is interview but interview.cameras is empty: nothing "
                "to record; add [[interview.cameras]] to the config"
            )
        if self.ffmpeg is None:
            logger.error(WARNING)
            with self.ctx.ledger.tx() as conn:
                events.emit(conn, "interview.degraded", reason="ffmpeg missing: video only")
        elif self.font is None:
            logger.warning(
                "no CJK font found (fc-match :lang=zh-cn); Chinese text in the "
                "overlay will not render: install fonts-noto-cjk or set "
                "interview.font"
            )
        recovery.recover(self)
        self._write_state()
        commands.register_wake(self.wake)
        threads = [
            supervise("interview", self.step),
            supervise("interview-close", self.closer.step),
        ]
        if self.icfg.panel is not None:
            from drivers.panel_serial import SerialPanel

            self.panel = SerialPanel(self.icfg.panel, self.on_button, self.ctx.stop)
            threads.append(threading.Thread(target=self.panel.run, name="panel", daemon=True))
        for t in threads:
            t.start()
        return threads

    def shutdown(self) -> None:
        """Daemon stopping: end the capture cleanly; the session stays open and resumes (with
        an agent_down gap) when the daemon is back."""
        commands.unregister_wake(self.wake)
        for cam in self.cameras.values():
            cam.request_stop()
        for cam in self.cameras.values():
            cam.join(30)
        self.closer.drain(inline=True)  # the closer thread ends with the daemon's stop
        if self.panel is not None:
            self.panel.set_lamp(False)
            time.sleep(0.1)  # let the panel thread write it before the port closes

    # --- the main loop ---------------------------------------------------------------------

    def step(self) -> float:
        self.wake.wait(TICK)
        self.wake.clear()
        row = self.ctx.ledger.one(
            "SELECT * FROM interview_sessions WHERE state IN ('requested','recording','stopping')"
            " ORDER BY requested_at LIMIT 1"
        )
        if row is not None:
            if row["state"] in ("requested", "recording") and self.session_id != row["id"]:
                self._begin(row)
            elif row["state"] == "requested":
                self._check_started(row)
                row = ses.get(self.ctx.ledger.connect(), row["id"])  # lamp on in this turn
            elif row["state"] == "stopping":
                self._lamp(row)  # off at once: the operator sees the stop was taken
                self._finish(row)
                row = None
        self._lamp(row)
        if time.monotonic() - self._last_state >= 1.0:
            self._write_state()
        return 0.0

    def _begin(self, row: Any) -> None:
        sid = row["id"]
        if not self.icfg.cameras:
            with self.ctx.ledger.tx() as conn:
                ses.fail(conn, sid, "no cameras configured (interview.cameras)")
            return
        meta = ses.metadata(row)
        started = ses.epoch(row["started_at"])
        self.session_id = sid
        self.video_only_gaps = {}
        for cam in self.icfg.cameras:
            audio_text = cam.audio or self.icfg.microphone
            audio = None if audio_text is None else audio_source(audio_text, cam.video)
            video_only = self.ffmpeg is None or audio is None
            run = CameraRun(
                cam,
                self.icfg,
                self,
                sid,
                self.dir / "work" / sid / cam.id,
                self.dir / "thumbs",
                ffcmd.overlay_text(self.room, cam.name or cam.id, meta.case_number),
                self.make_capture,
                audio,
                video_only,
                down_gap=self.recovered_gaps.pop((sid, cam.id), None),
                seal=self.ctx.seal,
            )
            run.session_started = started
            self.cameras[cam.id] = run
            run.start()
        if started is not None:  # resumed after a restart: the agent_down gap covers until now
            self._open_video_only_gaps(time.time())
        logger.info(
            "interview session %s: %s cameras (%s)",
            sid,
            "starting" if started is None else "resuming",
            len(self.cameras),
        )

    def _check_started(self, row: Any) -> None:
        firsts = [c.first_live for c in self.cameras.values() if c.first_live is not None]
        if firsts:
            started = min(firsts)
            with self.ctx.ledger.tx() as conn:
                ses.set_recording(
                    conn,
                    row["id"],
                    started,
                    list(self.cameras),
                    any(c.video_only for c in self.cameras.values()),
                )
            for cam in self.cameras.values():
                cam.session_started = started
            self._open_video_only_gaps(started)
            logger.info(
                "interview session %s recording (case %s)", row["id"], row["case_number"] or "-"
            )
            return
        waited = time.time() - (ses.epoch(row["requested_at"]) or time.time())
        if waited > self.icfg.start_timeout_seconds:
            why = "; ".join(f"{c.cam.id}: {c.down_reason[1]}" for c in self.cameras.values())
            reason = f"no camera delivered within {self.icfg.start_timeout_seconds:g} s ({why})"
            logger.error("interview session %s failed: %s", row["id"], reason)
            self._stop_cameras()
            with self.ctx.ledger.tx() as conn:
                ses.fail(conn, row["id"], reason)
            self._reset()

    def _open_video_only_gaps(self, started: float) -> None:
        for cam in self.cameras.values():
            if cam.video_only and cam.cam.id not in self.video_only_gaps:
                why = (
                    WARNING
                    if self.ffmpeg is None
                    else "no microphone configured for this "
                    "camera (interview.microphone or the camera's audio)"
                )
                self.video_only_gaps[cam.cam.id] = self.gap_open(
                    cam.cam.id, "no_audio", started, why
                )

    def _finish(self, row: Any) -> None:
        sid = row["id"]
        if self.session_id != sid:  # stop asked for while no capture ran (e.g. after restart)
            self.session_id = sid
        self._stop_cameras()
        ended = ses.epoch(row["ended_at"]) or time.time()
        for cam in self.cameras.values():
            cam.close_gaps(ended)
        for gid in self.video_only_gaps.values():
            self.gap_close(gid, ended)
        for g in self.ctx.ledger.query(  # left open by a crash before the stop was handled
            "SELECT id FROM interview_gaps WHERE session_id=? AND end IS NULL", (sid,)
        ):
            self.gap_close(int(g["id"]), ended)
        self.closer.drain()
        with self.ctx.ledger.tx() as conn:
            if row["started_at"] is None:
                ses.fail(conn, sid, "stopped before recording started")
            else:
                cov, counts = session_coverage(conn, sid, self.icfg.gap_seconds)
                ses.close(conn, sid, cov, counts)
        logger.info("interview session %s closed", sid)
        self._cleanup_work(sid)
        self._reset()
        if self.ingest_wake is not None:
            self.ingest_wake.set()

    def _stop_cameras(self) -> None:
        for cam in self.cameras.values():
            cam.request_stop()
        for cam in self.cameras.values():
            if not cam.join(60):
                logger.error("camera %s did not stop within 60 s", cam.cam.id)

    def _reset(self) -> None:
        self.cameras = {}
        self.session_id = None
        self.video_only_gaps = {}

    def _cleanup_work(self, sid: str) -> None:
        """Run directories keep only ffmpeg's lists once every segment moved out; drop them."""
        work = self.dir / "work" / sid
        if not work.exists():
            return
        if any(work.rglob("seg_*.ts")):
            logger.warning(
                "session %s: segment files left in %s; kept for the next recovery", sid, work
            )
            return
        shutil.rmtree(work, ignore_errors=True)

    # --- lamp and state --------------------------------------------------------------------

    def _lamp(self, row: Any) -> None:
        want = (
            row is not None
            and row["state"] == "recording"
            and bool(self.cameras)
            and all(c.healthy for c in self.cameras.values())
        )
        self.lamp_wanted = want
        if self.panel is not None:
            self.panel.set_lamp(want)

    def _write_state(self) -> None:
        self._last_state = time.monotonic()
        doc = {
            "pid": os.getpid(),
            "at": clock.now_iso(),
            "session": self.session_id,
            "lamp": self.lamp_wanted,
            "panel": None
            if self.panel is None
            else {
                "port": self.icfg.panel.port if self.icfg.panel else None,
                "connected": self.panel.connected,
                "lamp_confirmed": self.panel.lamp,
            },
            "video_only": self.ffmpeg is None,
            "cameras": {cid: cam.stats for cid, cam in self.cameras.items()},
        }
        tmp = self.dir / f".{STATE_FILE}.tmp"
        try:
            tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.dir / STATE_FILE)
            self._state_failing = False
        except OSError as exc:  # e.g. the capture disk is full: the loop must go on
            if not self._state_failing:
                logger.warning("cannot write %s: %s", self.dir / STATE_FILE, exc)
            self._state_failing = True

    # --- panel -----------------------------------------------------------------------------

    def on_button(self, button: str) -> None:
        params = {"source": "panel"}
        if button == "START":
            res = commands.start(self.ctx, params, wait=False)
        elif button == "STOP":
            res = commands.stop(self.ctx, params, wait=False)
        else:
            res = commands.mark(self.ctx, params)
        if self.panel is not None:
            self.panel.ack(button, bool(res.get("ok")), str(res.get("error", "")))

    # --- hooks for the cameras ---------------------------------------------------------------

    def submit(self, job: segs.Job) -> None:
        self.closer.submit(job)

    def gap_open(self, camera: str, kind: str, start: float, detail: str) -> int:
        assert self.session_id is not None
        with self.ctx.ledger.tx() as conn:
            gid = ses.open_gap(conn, self.session_id, camera, kind, start, detail)
        logger.warning(
            "interview gap %d opened: camera %s %s from %s: %s",
            gid,
            camera,
            kind,
            ses.iso_at(start),
            detail,
        )
        self.wake.set()
        return gid

    def gap_close(self, gid: int, end: float) -> None:
        with self.ctx.ledger.tx() as conn:
            ses.close_gap(conn, gid, end)
        logger.info("interview gap %d closed at %s", gid, ses.iso_at(end))
        self.wake.set()

    def gap_refine(self, gid: int, kind: str, detail: str) -> None:
        with self.ctx.ledger.tx() as conn:
            ses.refine_gap(conn, gid, kind, detail)

    def changed(self) -> None:
        self.wake.set()
