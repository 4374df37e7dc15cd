"""One camera during one session: run its capture, watch it, restart it, account for gaps.

A camera is *live* while pictures and sound keep arriving. It goes *down* when the capture
ends or stalls (no picture or no sound for `gap_seconds`, an input error, a write error); a
"down" gap opens at the last real picture or sound and closes at the first one of the next
capture run, which starts as soon as the source answers again. Frozen or black pictures and a
dead microphone are gaps too (the files hold frames, but not a record of the room), opened
once they last `gap_seconds`, from the moment they began.

Every file the capture finishes goes to the service's closer (hash, custody, ingest) while
the session is still running; the segment list ffmpeg writes gives each file's times.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config.interview import CameraConfig, InterviewConfig
from agent.core import envelope
from agent.interview.ffproc import ProcessReport, describe_exit, progress_counts
from agent.interview.hooks import Hooks
from agent.interview.runs import Capture, Run, jobs_for_run
from agent.interview.segments import Job
from agent.interview.thumbs import Thumbnails
from agent.interview.watch import PictureWatch, SoundWatch
from agent.rules import sources

logger = logging.getLogger(__name__)

TICK = 0.2
Ended = tuple[str, str, float | None]  # why a capture run ended: gap kind, detail, since


class CameraRun:
    def __init__(
        self,
        cam: CameraConfig,
        icfg: InterviewConfig,
        hooks: Hooks,
        session_id: str,
        work_dir: Path,
        thumbs_dir: Path,
        overlay: str,
        make_capture: Callable[[CameraRun, Path, Path, float], Capture],
        audio: sources.Source | None,
        video_only: bool,
        down_gap: int | None = None,
        seal: envelope.Recipients | None = None,
    ) -> None:
        self.cam = cam
        self.thumbs = Thumbnails(thumbs_dir, cam.id, seal)
        self.icfg = icfg
        self.hooks = hooks
        self.session_id = session_id
        self.work_dir = work_dir
        self.overlay = overlay
        self.make_capture = make_capture
        self.video = sources.parse(cam.video)
        self.audio = audio
        self.video_only = video_only
        self.picture = PictureWatch(icfg.black_level, icfg.freeze_diff)
        self.sound = SoundWatch(icfg.silence_dbfs)
        self.live = False
        self.first_live: float | None = None
        self.last_content: float | None = None
        self.session_started: float | None = None
        self.down_gap = down_gap
        self.down_reason: tuple[str, str] = ("no_frames", "camera not delivering yet")
        self.cond_gaps: dict[str, int] = {}
        self._refined = False  # the open down gap's cause was made specific already
        self.runs = 0
        self.stats: dict[str, Any] = {}
        self._stop = threading.Event()
        self._nudge = threading.Event()  # the first picture/sound arrived: look at once
        self._thread: threading.Thread | None = None
        self._last_thumb = 0.0

    @property
    def want_audio(self) -> bool:
        return self.audio is not None and not self.video_only

    # --- control ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"interview-{self.cam.id}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()
        self._nudge.set()

    def on_picture(self, rgb: Any, t: float) -> None:
        self.picture.feed(rgb, t)
        if not self.live:
            self._nudge.set()

    def on_sound(self, level: float, t: float) -> None:
        self.sound.feed(level, t)
        if not self.live:
            self._nudge.set()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # --- the loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._attempt()
            except Exception as exc:  # noqa: BLE001 - keep trying as long as the session runs
                logger.exception("camera %s: capture attempt failed", self.cam.id)
                self._went_down("capture_failed", str(exc), time.time())
            if not self._stop.is_set():
                self._wait(self.icfg.reconnect_seconds)
        self._close_conditions(self.last_content or time.time())

    def _wait(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < until:
            self._maybe_open_down_gap(time.time())
            self._stop.wait(min(TICK, max(0.0, until - time.monotonic())))

    def _attempt(self) -> None:
        for src in (self.video, self.audio if self.want_audio else None):
            if src is None:
                continue
            problem = sources.check(src, timeout=min(2.0, self.icfg.read_timeout_seconds))
            if problem:
                what = "camera" if src is self.video else "microphone"
                kind = "unplugged" if src is self.video else "no_audio"
                self._went_down(kind, f"{what} {sources.redact(src.target)}: {problem}", None)
                return
        run = self._spawn()
        ended: tuple[str, str, float | None] | None = None
        try:
            ended = self._watch(run)
        finally:
            rc = run.capture.stop()
            r = run.capture.report
            last_end = self._collect(run, final=True)
            if not self._stop.is_set():
                if r.output_error:
                    ended = ("write_failed", describe_exit(r, rc), None)
                elif ended is None or ended[0] == "exited":
                    ended = ("no_frames", describe_exit(r, rc), None)
                kind, detail, since = ended
                self._went_down(kind, detail, self._refine(since or self.last_content, last_end))
            self.live = False

    def _refine(self, seen: float | None, last_end: float | None) -> float | None:
        """When the record stopped: the last picture seen is up to one monitor interval
        before the last frame; the segment list's end (which sound may stretch) bounds it."""
        if seen is None or last_end is None:
            return seen if seen is not None else last_end
        return max(seen, min(last_end, seen + 1.0 / self.icfg.monitor_fps))

    def _spawn(self) -> Run:
        self.runs += 1
        run_dir = self.work_dir / f"run-{self._next_index():03d}"
        run_dir.mkdir(parents=True)
        spawn_time = round(time.time(), 3)
        overlay_file = run_dir / "overlay.txt"
        overlay_file.write_text(self.overlay, encoding="utf-8")
        capture = self.make_capture(self, run_dir, overlay_file, spawn_time)
        capture.start()
        run = Run(run_dir, spawn_time, capture, time.time())
        try:
            self._write_run_json(run, None)
        except OSError:
            # Without run.json a crash could not be recovered precisely; and a disk that
            # cannot take 200 bytes cannot take the segments either: do not record blind.
            capture.stop()
            self._collect(run, final=True)
            raise
        logger.info(
            "camera %s: capture run %s started (pid %s)", self.cam.id, run_dir.name, capture.pid
        )
        return run

    def _next_index(self) -> int:
        if not self.work_dir.exists():
            return 1
        return 1 + sum(1 for _ in self.work_dir.glob("run-*"))

    def _write_run_json(self, run: Run, first_wall: float | None) -> None:
        doc = {
            "session": self.session_id,
            "camera": self.cam.id,
            "spawn_time": run.spawn_time,
            "pid": run.capture.pid,
            "first_wall": first_wall,
            "video_only": self.video_only,
        }
        tmp = run.dir / ".run.json.tmp"
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, run.dir / "run.json")

    def _watch(self, run: Run) -> Ended | None:
        """Follow a run until it ends; returns (gap kind, why, since) or None when stopped."""
        while not self._stop.is_set():
            self._nudge.wait(TICK)
            self._nudge.clear()
            if self._stop.is_set():
                break
            now = time.time()
            r = run.capture.report
            ended = self._ended(run, r, now)
            if ended is not None:
                return ended
            self._collect(run, final=False)
            self._maybe_open_down_gap(now)
            self._update_stats(r, now)
        return None

    def _ended(self, run: Run, r: ProcessReport, now: float) -> Ended | None:
        """One look at a running capture: why it ended (a gap opens), or None while it runs."""
        if not self.live:
            start = run.content_start(self.want_audio)
            if start is not None:
                self._went_live(run, start)
            elif now - run.spawned > self.icfg.read_timeout_seconds + self.icfg.gap_seconds:
                return ("no_frames", describe_exit(r, None), None)
        if run.capture.poll() is not None:
            return ("exited", "", None)
        if r.output_error:
            return ("write_failed", r.output_error, None)
        if 0 in r.input_error:
            return ("no_frames", f"camera: {r.input_error[0]}", r.last_picture)
        if 1 in r.input_error:
            return ("no_audio", f"microphone: {r.input_error[1]}", r.last_sound)
        if not self.live:
            return None
        stalled = self._stalled(r, now, self.icfg.gap_seconds)
        if stalled is None:
            self._check_conditions(now)
            self._thumbnail(now)
        return stalled

    def _stalled(self, r: ProcessReport, now: float, threshold: float) -> Ended | None:
        if r.last_picture is not None and now - r.last_picture > threshold:
            return ("no_frames", f"no picture for {now - r.last_picture:.1f} s", r.last_picture)
        if self.want_audio and r.last_sound is not None and now - r.last_sound > threshold:
            return ("no_audio", f"no sound for {now - r.last_sound:.1f} s", r.last_sound)
        latest = [r.last_picture, r.last_sound if self.want_audio else r.last_picture]
        if all(t is not None for t in latest):
            self.last_content = min(t for t in latest if t is not None)
        return None

    # --- state changes ---------------------------------------------------------------------

    def _went_live(self, run: Run, start: float) -> None:
        self.live = True
        self.first_live = self.first_live or start
        self.last_content = start
        self._write_run_json(run, start)
        if self.down_gap is not None:
            self.hooks.gap_close(self.down_gap, start)
            self.down_gap = None
            self._refined = False
        logger.info("camera %s: recording (first frame %.3f)", self.cam.id, start)
        self.hooks.changed()

    def _went_down(self, kind: str, detail: str, since: float | None) -> None:
        was_live = self.live
        self.live = False
        self.down_reason = (kind, detail)
        if was_live:
            logger.warning("camera %s: recording interrupted (%s): %s", self.cam.id, kind, detail)
            self._close_conditions(self.last_content or time.time())
            self.hooks.changed()
        if self.down_gap is not None and kind == "unplugged" and not self._refined:
            self.hooks.gap_refine(self.down_gap, kind, detail)  # "stopped" turned out "gone"
            self._refined = True
        if (
            self.down_gap is None
            and self.session_started is not None
            and (was_live or since is not None)
        ):
            start = max(since or self.last_content or time.time(), self.session_started)
            self.down_gap = self.hooks.gap_open(self.cam.id, kind, start, detail)

    def _maybe_open_down_gap(self, now: float) -> None:
        """A camera that has not delivered since the session started (or since it went down)
        is in a gap once that has lasted `gap_seconds`."""
        if self.live or self.down_gap is not None or self.session_started is None:
            return
        since = max(self.last_content or self.session_started, self.session_started)
        if now - since >= self.icfg.gap_seconds:
            kind, detail = self.down_reason
            self.down_gap = self.hooks.gap_open(self.cam.id, kind, since, detail)

    def _check_conditions(self, now: float) -> None:
        threshold = self.icfg.gap_seconds
        conds = self.picture.conditions(now, threshold)
        if self.want_audio:
            conds.update(self.sound.conditions(now, threshold))
        started = self.session_started
        for kind, since in conds.items():
            if kind not in self.cond_gaps and started is not None:
                detail = {
                    "frozen": "the picture does not change",
                    "black": "the picture is black",
                    "no_sound": "the microphone delivers silence",
                }[kind]
                logger.warning("camera %s: %s", self.cam.id, detail)
                self.cond_gaps[kind] = self.hooks.gap_open(
                    self.cam.id, kind, max(since, started), detail
                )
                self.hooks.changed()
        for kind in [k for k in self.cond_gaps if k not in conds]:
            self.hooks.gap_close(self.cond_gaps.pop(kind), now)
            self.hooks.changed()

    def _close_conditions(self, end: float) -> None:
        for kind in list(self.cond_gaps):
            self.hooks.gap_close(self.cond_gaps.pop(kind), end)

    @property
    def healthy(self) -> bool:
        """Live, with no gap open: what the panel lamp may show as recording."""
        return self.live and not self.cond_gaps and self.down_gap is None

    def close_gaps(self, end: float) -> None:
        """Session over: whatever is still open ends now."""
        self._close_conditions(end)
        if self.down_gap is not None:
            self.hooks.gap_close(self.down_gap, end)
            self.down_gap = None

    # --- segments and stats ----------------------------------------------------------------

    def _collect(self, run: Run, final: bool) -> float | None:
        """Hand the run's closed segments to the closer; returns the latest known end."""
        r = run.capture.report
        first = run.content_start(self.want_audio) or r.first_picture
        latest = None
        jobs = jobs_for_run(
            run.dir,
            self.session_id,
            self.cam.id,
            run.spawn_time,
            first,
            final,
            run.handed,
            self.video_only,
        )
        for idx, job in jobs:
            run.handed.add(idx)
            latest = job.end if job.end is not None else latest
            self._segment_thumbnail(job)
            self.hooks.submit(job)
        if latest is not None:
            run.last_end = max(run.last_end or latest, latest)
        return run.last_end

    def _segment_thumbnail(self, job: Job) -> None:
        self.thumbs.keep_for_segment(self.session_id, job.work_path.stem)

    def _thumbnail(self, now: float) -> None:
        if now - self._last_thumb >= self.icfg.thumbnail_seconds:
            self._last_thumb = now
            self.thumbs.write_latest(self.picture)

    def _update_stats(self, r: ProcessReport, now: float) -> None:

        self.stats = {
            "state": "recording" if self.live else "down",
            "runs": self.runs,
            "pictures_checked": r.pictures,
            "last_picture_age_s": None
            if r.last_picture is None
            else round(now - r.last_picture, 2),
            "sound_dbfs": None if self.sound.level == float("-inf") else round(self.sound.level, 1),
            "brightness": round(self.picture.mean_level, 1),
            "gaps_open": sorted(self.cond_gaps) + ([self.down_reason[0]] if self.down_gap else []),
            **progress_counts(r),
        }
