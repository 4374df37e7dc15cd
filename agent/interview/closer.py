"""The `interview-close` thread: every segment a capture finished is closed in order (probe,
fsync, hash, custody, move into the camera's volume) and handed to ingest, while the session
is still recording. A segment that cannot be closed (I/O error) is tried again; if that keeps
failing it stays in its run directory, where recovery finds it at the next start.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time

from agent.ingest.ingestor import Ingestor
from agent.interview import segments as segs
from agent.rules import sources
from agent.station.context import Context

logger = logging.getLogger(__name__)

ATTEMPTS = 5


class Closer:
    def __init__(
        self,
        ctx: Context,
        ingestor: Ingestor,
        ingest_wake: threading.Event | None,
        ffprobe: str | None,
    ) -> None:
        self.ctx = ctx
        self.ingestor = ingestor
        self.ingest_wake = ingest_wake
        self.ffprobe = ffprobe
        self.jobs: queue.Queue[segs.Job] = queue.Queue()

    def submit(self, job: segs.Job) -> None:
        self.jobs.put(job)

    def step(self) -> float:
        """One turn of the thread: close the next segment, if any."""
        try:
            job = self.jobs.get(timeout=0.5)
        except queue.Empty:
            return 0.0
        try:
            self.close(job)
        finally:
            self.jobs.task_done()
        return 0.0

    def drain(self, inline: bool = False) -> None:
        """Wait until every segment handed over so far is closed. `inline` closes the rest in
        the caller's thread (at shutdown, when the closer thread has stopped)."""
        while inline:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            try:
                self.close(job)
            finally:
                self.jobs.task_done()
        self.jobs.join()

    def close(self, job: segs.Job) -> None:
        for attempt in range(ATTEMPTS):
            try:
                row = segs.close_segment(self.ctx, job, self.ffprobe)
                break
            except OSError as exc:
                logger.error(
                    "segment %s could not be closed (attempt %d of %d): %s",
                    job.work_path,
                    attempt + 1,
                    ATTEMPTS,
                    exc,
                )
                time.sleep(1.0 + attempt)
        else:
            logger.error(
                "segment %s stays in its run directory; it is closed at the next start of "
                "the agent",
                job.work_path,
            )
            return
        if row is not None:
            self.register(job.camera, job.session_id)

    def register(self, camera: str, session_id: str | None = None) -> None:
        """Hand the camera's volume to ingest (idempotent: ingest knows what it has)."""
        volume = segs.volume_dir(self.ctx, camera)
        if not volume.exists():
            return
        cams = self.ctx.cfg.interview.cameras
        cam = next((c for c in cams if c.id == camera), None)
        officer = None
        if session_id is not None:
            row = self.ctx.ledger.one(
                "SELECT interviewers FROM interview_sessions WHERE id=?", (session_id,)
            )
            names = json.loads(row["interviewers"]) if row is not None else []
            officer = names[0] if names else None
        src = sources.redact(cam.video) if cam else "?"
        kind = sources.parse(cam.video).kind if cam else "unknown"
        ident = segs.identity(self.ctx.station_id, camera, kind, src, officer)
        self.ingestor.register_volume(volume, ident)
        segs.link_recordings(self.ctx, camera)
        segs.tag_recordings(self.ctx, camera)
        if self.ingest_wake is not None:
            self.ingest_wake.set()
