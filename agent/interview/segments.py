"""Closing a segment: probe, hash, chain it in the custody log, move it into the camera's
volume, hand it to ingest.

Order, so a crash at any point loses nothing and doubles nothing: hash the file where the
capture left it → one transaction inserts the segment row (keyed by that work path) with its
custody event → set its mtime to the end of its content → rename into the volume (same file
system) → fsync both directories → register the volume with ingest, which copies and verifies
it like any recorder's file. Recovery finishes a move whose row committed (segments.finish).

The camera's volume is `<capture_dir>/volumes/<camera>/`, one directory per session inside,
named `<station>-<camera>_<local start>_<seq>.ts` (the `interview` naming pattern).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.core import clock
from agent.core.copier import hash_file
from agent.core.safefs import fsync_dir
from agent.interview import sealseg
from agent.interview import sessions as ses
from agent.ledger import custody
from agent.station.context import Context
from drivers.base import DeviceIdentity

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """A segment file the capture has finished with (or a crash left behind)."""

    session_id: str
    camera: str
    work_path: Path
    start: float  # wall clock, seconds
    end: float | None  # None: unknown (salvaged): from the container or the file's mtime
    salvaged: bool = False
    video_only: bool = False


@dataclass
class Probe:
    duration: float | None
    has_video: bool | None
    has_audio: bool | None
    playable: bool | None
    reason: str | None


def device_serial(station: str, camera: str) -> str:
    return f"{station}-{camera}"


def identity(
    station: str, camera: str, model: str, port: str, officer: str | None
) -> DeviceIdentity:
    return DeviceIdentity(
        vendor="interview",
        serial=device_serial(station, camera),
        source="interview",
        model=model,
        port=port,
        officer_id=officer,
    )


def volume_dir(ctx: Context, camera: str) -> Path:
    return ctx.cfg.interview_dir / "volumes" / camera


def probe(path: Path, ffprobe: str | None) -> Probe:
    """Streams and duration by ffprobe (OpenCV when ffprobe is missing)."""
    if ffprobe:
        try:
            out = subprocess.run(
                [
                    ffprobe,
                    "-v",
                    "error",
                    "-show_entries",
                    "stream=codec_type:format=duration",
                    "-of",
                    "json",
                    str(path),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            doc = json.loads(out.stdout or "{}")
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            return Probe(None, None, None, None, f"ffprobe failed: {exc}")
        types = {s.get("codec_type") for s in doc.get("streams", [])}
        try:
            duration = float(doc.get("format", {}).get("duration"))
        except (TypeError, ValueError):
            duration = None
        playable = "video" in types and duration is not None and duration > 0
        why = None if playable else (out.stderr.strip()[-200:] or "no decodable video stream")
        return Probe(duration, "video" in types, "audio" in types, playable, why)
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS) or 0
        ok = cap.isOpened() and frames > 0
        duration = frames / fps if ok and fps else None
        return Probe(duration, ok, False, ok, None if ok else "OpenCV cannot read it")
    finally:
        cap.release()


def file_name(station: str, camera: str, start: float, seq: int, tz: str) -> str:
    local = datetime.fromtimestamp(start, ZoneInfo(tz)).strftime("%Y%m%d%H%M%S")
    serial = device_serial(station, camera).replace("_", "-")
    return f"{serial}_{local}_{seq:04d}.ts"


def close_segment(ctx: Context, job: Job, ffprobe: str | None) -> sqlite3.Row | None:
    """Steps 1-4 of the module docstring; returns the segment row (None for an empty file
    ffmpeg opened and never wrote to: it holds nothing and is removed)."""
    known = ctx.ledger.one(
        "SELECT * FROM interview_segments WHERE work_path=?", (str(job.work_path),)
    )
    if known is not None:
        finish(ctx, known)
        return known
    size = job.work_path.stat().st_size
    if size == 0:
        # ffmpeg had opened the file and written nothing: there is nothing to keep.
        logger.info("removing empty segment file %s", job.work_path)
        job.work_path.unlink()
        return None
    _fsync(job.work_path)  # ffmpeg wrote it through the page cache; make it durable first
    info = probe(job.work_path, ffprobe)
    end = job.end
    if end is None:
        mtime = job.work_path.stat().st_mtime
        end = min(job.start + info.duration, mtime) if info.duration else mtime
    end = max(end, job.start)
    # With a station key: sealed in the same pass as the hash (agent.interview.sealseg).
    sha = sealseg.seal(ctx, job.work_path) or hash_file(job.work_path)
    tz = ctx.cfg.station.timezone
    with ctx.ledger.tx() as conn:
        last_seq = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM interview_segments WHERE session_id=? AND camera=?",
            (job.session_id, job.camera),
        ).fetchone()[0]
        seq = int(last_seq) + 1
        name = file_name(ctx.station_id, job.camera, job.start, seq, tz)
        rel = f"{job.session_id}/{name}"
        volume = volume_dir(ctx, job.camera)
        has_audio = False if job.video_only else info.has_audio
        cur = conn.execute(
            "INSERT INTO interview_segments(session_id, camera, seq, work_path, volume, path,"
            " start, end, duration_s, size, sha256, has_video, has_audio, playable, salvaged,"
            " reason, closed_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                job.session_id,
                job.camera,
                seq,
                str(job.work_path),
                str(volume),
                rel,
                ses.iso_at(job.start),
                ses.iso_at(end),
                info.duration,
                size,
                sha,
                _int(info.has_video),
                _int(has_audio),
                _int(info.playable),
                int(job.salvaged),
                info.reason,
                clock.now_iso(),
            ),
        )
        custody.append(
            conn,
            "interview.segment",
            {
                "session": job.session_id,
                "camera": job.camera,
                "seq": seq,
                "file": rel,
                "sha256": sha,
                "size": size,
                "alg": "sha256",
                "start": ses.iso_at(job.start),
                "end": ses.iso_at(end),
                "salvaged": job.salvaged,
                "has_audio": has_audio,
                "has_video": info.has_video,
                "duration_s": info.duration,
            },
        )
        row = conn.execute(
            "SELECT * FROM interview_segments WHERE id=?", (cur.lastrowid,)
        ).fetchone()
    if job.salvaged:
        logger.warning(
            "session %s camera %s: segment %d salvaged after a crash (%d bytes, kept bit-exact)",
            job.session_id,
            job.camera,
            seq,
            size,
        )
    finish(ctx, row)
    return row


def finish(ctx: Context, row: sqlite3.Row) -> None:
    """Move a committed segment into its volume (idempotent: recovery calls it again)."""
    work = Path(row["work_path"])
    dest = Path(row["volume"]) / row["path"]
    if dest.exists():
        sealseg.drop_plaintext(ctx, work, dest, row["sha256"])
        return
    if not work.exists():
        logger.error(
            "segment %s of session %s: neither %s nor %s exists; its hash %s is in the "
            "custody log; look for the file",
            row["seq"],
            row["session_id"],
            work,
            dest,
            row["sha256"],
        )
        return
    end = ses.epoch(row["end"]) or work.stat().st_mtime
    src = sealseg.sealed_source(ctx, work, row["sha256"])  # the envelope, with a station key
    # The ingest pipeline takes a file's end time from its mtime: make that the content's end.
    os.utime(src, (end, end))
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dest)
    fsync_dir(dest.parent)
    fsync_dir(work.parent)
    if src != work:
        sealseg.drop_plaintext(ctx, work, dest, row["sha256"])


def link_recordings(ctx: Context, camera: str) -> int:
    """Fill interview_segments.recording_id from the ingest ledger (after register_volume)."""
    with ctx.ledger.tx() as conn:
        cur = conn.execute(
            "UPDATE interview_segments SET recording_id = (SELECT r.id FROM recordings r"
            " JOIN devices d ON d.id = r.device_id WHERE d.vendor='interview' AND d.serial=?"
            " AND r.source_path = interview_segments.path)"
            " WHERE recording_id IS NULL AND camera = ?",
            (device_serial(ctx.station_id, camera), camera),
        )
        return cur.rowcount


def session_fields(room: str, meta: ses.Metadata) -> dict[str, str]:
    """The session's case metadata as recording metadata fields (not yet validated)."""
    fields = {
        "case_number": meta.case_number,
        "capture_place": room,
        "collector": meta.interviewers[0] if meta.interviewers else None,
        "proves": meta.proves,
    }
    return {k: v for k, v in fields.items() if v}


def tag_recordings(ctx: Context, camera: str) -> int:
    """Give each newly ingested segment of `camera` its session's case metadata (once: a
    recording tagged before, e.g. corrected by an operator, is left alone)."""
    from agent.core.errors import TagError
    from agent.tagging import apply as tagging

    rows = ctx.ledger.query(
        "SELECT s.recording_id, s.start, s.session_id FROM interview_segments s"
        " JOIN recordings r ON r.id = s.recording_id"
        " WHERE s.camera=? AND r.metadata_version = 0",
        (camera,),
    )
    n = 0
    for r in rows:
        session = ctx.ledger.one("SELECT * FROM interview_sessions WHERE id=?", (r["session_id"],))
        if session is None:
            continue
        fields = {
            **session_fields(session["room"], ses.metadata(session)),
            "capture_time": r["start"],
        }
        try:
            clean = tagging.validator(ctx).validate(fields)
            with ctx.ledger.tx() as conn:
                tagging.apply(
                    conn,
                    ctx,
                    r["recording_id"],
                    clean,
                    actor=f"interview:{r['session_id']}",
                    reason=None,
                    origin="interview",
                )
            n += 1
        except TagError as exc:
            logger.warning(
                "segment recording %s keeps no case metadata: %s; tag it with `evidence-agent tag`",
                r["recording_id"],
                exc,
            )
    return n


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _int(v: bool | None) -> int | None:
    return None if v is None else int(v)
