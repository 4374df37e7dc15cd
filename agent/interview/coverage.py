"""Coverage of a session: the share of its wall-clock time held by real pictures and sound.

Per camera: the session [started, ended] minus (a) every recorded gap (the camera was down,
frozen, black or silent) and (b) any stretch not covered by a segment's timestamps that lasts
`gap_seconds` or more (shorter seams, e.g. between one camera's first frame and another's, are
the same tolerance the live detection uses). The session's coverage is that of its worst
camera: every camera has to cover the whole session.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from agent.interview import sessions as ses

Interval = tuple[float, float]


def union(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def clip(intervals: Iterable[Interval], lo: float, hi: float) -> list[Interval]:
    return [(max(s, lo), min(e, hi)) for s, e in intervals if min(e, hi) > max(s, lo)]


def holes(covered: list[Interval], lo: float, hi: float) -> list[Interval]:
    """The parts of [lo, hi] not in `covered` (a union)."""
    out, at = [], lo
    for s, e in covered:
        if s > at:
            out.append((at, s))
        at = max(at, e)
    if at < hi:
        out.append((at, hi))
    return out


def camera_coverage(
    start: float, end: float, segments: list[Interval], gaps: list[Interval], tolerance: float
) -> tuple[float, list[Interval]]:
    """(coverage 0..1, uncovered intervals) of one camera."""
    if end <= start:
        return 1.0, []
    seg = union(clip(segments, start, end))
    unexplained = [h for h in holes(seg, start, end) if h[1] - h[0] >= tolerance]
    bad = union(clip(gaps, start, end) + unexplained)
    lost = sum(e - s for s, e in bad)
    return max(0.0, 1.0 - lost / (end - start)), bad


def session_coverage(
    conn: sqlite3.Connection, sid: str, tolerance: float, now: float | None = None
) -> tuple[float, dict[str, Any]]:
    """(session coverage, counts and per-camera figures) from the ledger."""
    row = ses.get(conn, sid)
    assert row is not None
    start = ses.epoch(row["started_at"])
    end = ses.epoch(row["ended_at"]) or now
    cameras = per_camera(conn, sid, start, end, tolerance)
    n_seg = conn.execute(
        "SELECT COUNT(*) FROM interview_segments WHERE session_id=?", (sid,)
    ).fetchone()[0]
    n_gap = conn.execute(
        "SELECT COUNT(*) FROM interview_gaps WHERE session_id=?", (sid,)
    ).fetchone()[0]
    cov = min((c["coverage"] for c in cameras.values()), default=0.0)
    return round(cov, 6), {"segments": n_seg, "gaps": n_gap, "cameras": len(cameras)}


def per_camera(
    conn: sqlite3.Connection, sid: str, start: float | None, end: float | None, tolerance: float
) -> dict[str, dict[str, Any]]:
    """camera -> {coverage, uncovered_s} over [start, end]."""
    segs: dict[str, list[Interval]] = {}
    for r in conn.execute(
        "SELECT camera, start, end FROM interview_segments WHERE session_id=?", (sid,)
    ):
        segs.setdefault(r["camera"], []).append(_iv(r["start"], r["end"], end))
    gaps: dict[str, list[Interval]] = {}
    for r in conn.execute(
        "SELECT camera, start, end FROM interview_gaps WHERE session_id=?", (sid,)
    ):
        gaps.setdefault(r["camera"], []).append(_iv(r["start"], r["end"], end))
    out = {}
    for cam in sorted(set(segs) | set(gaps)):
        if start is None or end is None:
            out[cam] = {"coverage": 0.0, "uncovered_s": None}
            continue
        cov, bad = camera_coverage(start, end, segs.get(cam, []), gaps.get(cam, []), tolerance)
        out[cam] = {"coverage": round(cov, 6), "uncovered_s": round(sum(e - s for s, e in bad), 3)}
    return out


def _iv(start: str, end: str | None, fallback_end: float | None) -> Interval:
    s = ses.epoch(start) or 0.0
    e = ses.epoch(end) if end else fallback_end
    return (s, e if e is not None else s)
