"""`evidence-agent interview report SESSION [--json]`: segments, hashes, coverage, gaps.

With verification (the default) every segment is re-hashed from the station's copy (the spool
copy once ingested, else the file in the camera's volume) and compared with the SHA-256 that
was chained in the custody log when it closed; the ingest pipeline's own hash is compared too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.core import sealedio
from agent.core.errors import AgentError
from agent.interview import sessions as ses
from agent.interview.coverage import per_camera
from agent.ledger import paths as stationpaths
from agent.station import kek
from agent.station.context import Context


def build(ctx: Context, ref: str, verify: bool = True) -> dict[str, Any]:
    conn = ctx.ledger.connect()
    sid = ses.resolve(conn, ref)
    row = ses.get(conn, sid)
    assert row is not None
    tolerance = ctx.cfg.interview.gap_seconds
    start, end = ses.epoch(row["started_at"]), ses.epoch(row["ended_at"])
    if start is not None and end is None and row["state"] in ses.ACTIVE:
        end = time.time()  # still recording: coverage so far
    cams = per_camera(conn, sid, start, end, tolerance)
    segments = [
        _segment(ctx.cfg, conn, r, verify)
        for r in conn.execute(
            "SELECT * FROM interview_segments WHERE session_id=? ORDER BY camera, seq", (sid,)
        )
    ]
    gaps = [
        _gap(r)
        for r in conn.execute(
            "SELECT * FROM interview_gaps WHERE session_id=? ORDER BY start, id", (sid,)
        )
    ]
    marks = [
        dict(at=r["at"], source=r["source"], note=r["note"])
        for r in conn.execute(
            "SELECT * FROM interview_marks WHERE session_id=? ORDER BY at", (sid,)
        )
    ]
    for cam, figures in cams.items():
        mine = [s for s in segments if s["camera"] == cam]
        figures["segments"] = len(mine)
        figures["recorded_s"] = round(sum(s["duration_s"] or 0 for s in mine), 3)
    coverage = min((c["coverage"] for c in cams.values()), default=0.0) if cams else None
    if row["coverage"] is not None:
        coverage = row["coverage"]
    meta = ses.metadata(row)
    doc = {
        "session": {
            "id": sid,
            "room": row["room"],
            "state": row["state"],
            **meta.full(),
            "place": row["room"],
            "requested_by": row["requested_by"],
            "requested_at": row["requested_at"],
            "started_at": row["started_at"],
            "ended_at": row["ended_at"],
            "closed_at": row["closed_at"],
            "duration_s": None if start is None or end is None else round(end - start, 3),
            "start_latency_s": _diff(row["requested_at"], row["started_at"]),
            "stop_requested_by": row["stop_requested_by"],
            "video_only": bool(row["fallback"]),
            "reason": row["reason"],
        },
        "coverage": coverage,
        "coverage_pct": None if coverage is None else round(100 * coverage, 2),
        "cameras": cams,
        "segments": segments,
        "gaps": gaps,
        "marks": marks,
        "hashes_verified": None if not verify else all(s["hash_ok"] for s in segments),
    }
    doc["warnings"] = _warnings(doc)
    return doc


def _diff(a: str | None, b: str | None) -> float | None:
    ea, eb = ses.epoch(a), ses.epoch(b)
    return None if ea is None or eb is None else round(eb - ea, 3)


def _plain_sha(cfg: Any, copy: Path) -> str | None:
    """SHA-256 of the plaintext (through the envelope of an encrypted spool copy)."""
    try:
        return sealedio.hash_plain(copy, kek.keyring(cfg))[0]
    except AgentError:
        return None


def _segment(cfg: Any, conn: Any, r: Any, verify: bool) -> dict[str, Any]:
    rec = None
    if r["recording_id"]:
        rec = conn.execute(
            "SELECT state, sha256, spool_path FROM recordings WHERE id=?", (r["recording_id"],)
        ).fetchone()
    copy = stationpaths.spool_file(cfg, rec["spool_path"]) if rec is not None else None
    if copy is None or not copy.exists():
        copy = Path(r["volume"]) / r["path"]
    hash_ok = None
    if verify:
        hash_ok = copy.exists() and _plain_sha(cfg, copy) == r["sha256"]
    return {
        "camera": r["camera"],
        "seq": r["seq"],
        "file": r["path"],
        "volume": r["volume"],
        "start": r["start"],
        "end": r["end"],
        "duration_s": r["duration_s"],
        "size": r["size"],
        "sha256": r["sha256"],
        "has_video": _b(r["has_video"]),
        "has_audio": _b(r["has_audio"]),
        "playable": _b(r["playable"]),
        "salvaged": bool(r["salvaged"]),
        "reason": r["reason"],
        "recording_id": r["recording_id"],
        "ingest_state": rec["state"] if rec else None,
        "ingest_sha256_matches": None
        if rec is None or rec["sha256"] is None
        else rec["sha256"] == r["sha256"],
        "verified_copy": str(copy) if verify else None,
        "hash_ok": hash_ok,
    }


def _gap(r: Any) -> dict[str, Any]:
    start, end = ses.epoch(r["start"]), ses.epoch(r["end"])
    return {
        "camera": r["camera"],
        "kind": r["kind"],
        "start": r["start"],
        "end": r["end"],
        "duration_s": None if start is None or end is None else round(end - start, 3),
        "open": r["end"] is None,
        "detail": r["detail"],
    }


def _b(v: int | None) -> bool | None:
    return None if v is None else bool(v)


def _warnings(doc: dict[str, Any]) -> list[str]:
    out = []
    s = doc["session"]
    if s["video_only"]:
        out.append("recorded VIDEO ONLY by the OpenCV fallback (ffmpeg missing): no sound")
    if not s["case_number"]:
        out.append("no case number: tag the recordings with the case")
    bad = [f"{x['camera']}#{x['seq']}" for x in doc["segments"] if x["hash_ok"] is False]
    if bad:
        out.append(f"hash mismatch (or file missing): {', '.join(bad)}")
    mism = [
        f"{x['camera']}#{x['seq']}" for x in doc["segments"] if x["ingest_sha256_matches"] is False
    ]
    if mism:
        out.append(f"ingest hash differs from the hash at close: {', '.join(mism)}")
    salv = [f"{x['camera']}#{x['seq']}" for x in doc["segments"] if x["salvaged"]]
    if salv:
        out.append(f"salvaged after a crash (kept bit-exact): {', '.join(salv)}")
    no_av = [
        f"{x['camera']}#{x['seq']}"
        for x in doc["segments"]
        if x["has_video"] is False or x["has_audio"] is False
    ]
    if no_av:
        out.append(f"segments lacking picture or sound: {', '.join(no_av)}")
    return out


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _t(iso: str | None) -> str:
    return iso[11:23] if iso else "-"


def render(doc: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    s = doc["session"]
    pct = "-" if doc["coverage_pct"] is None else f"{doc['coverage_pct']:.1f} %"
    console.print(f"[bold]interview session[/] {s['id']} ({s['state']}) room {s['room']}")
    console.print(
        f"  case {s['case_number'] or '-'}; interviewers {', '.join(s['interviewers']) or '-'};"
        f" subject {s['subject'] or '-'}; proves {s['proves'] or '-'}"
    )
    console.print(
        f"  requested {s['requested_at'] or '-'} by {s['requested_by']}; recording "
        f"{s['started_at'] or '-'} -> {s['ended_at'] or '(running)'}; "
        f"{s['duration_s'] if s['duration_s'] is not None else '-'} s"
    )
    cams = ", ".join(f"{c} {100 * v['coverage']:.1f} %" for c, v in doc["cameras"].items())
    console.print(f"  [bold]coverage {pct}[/] ({cams or 'no cameras recorded'})")
    t = Table(title="segments")
    for col in ("camera", "#", "start", "end", "s", "a/v", "sha256", "ingest", "hash"):
        t.add_column(col)
    for x in doc["segments"]:
        av = ("A" if x["has_audio"] else "-") + ("V" if x["has_video"] else "-")
        ok = {True: "[green]OK[/]", False: "[red]BAD[/]", None: "-"}[x["hash_ok"]]
        t.add_row(
            x["camera"],
            str(x["seq"]) + (" salvaged" if x["salvaged"] else ""),
            _t(x["start"]),
            _t(x["end"]),
            f"{x['duration_s'] or 0:.1f}",
            av,
            x["sha256"][:16],
            x["ingest_state"] or "-",
            ok,
        )
    console.print(t)
    if doc["gaps"]:
        g = Table(title="gaps")
        for col in ("camera", "kind", "start", "end", "s", "detail"):
            g.add_column(col)
        for x in doc["gaps"]:
            g.add_row(
                x["camera"] or "-",
                x["kind"],
                _t(x["start"]),
                _t(x["end"]) if x["end"] else "(open)",
                f"{x['duration_s'] or 0:.1f}",
                (x["detail"] or "")[:60],
            )
        console.print(g)
    else:
        console.print("  no gaps")
    for m in doc["marks"]:
        console.print(f"  mark {m['at']} ({m['source']}) {m['note'] or ''}")
    for w in doc["warnings"]:
        console.print(f"  [yellow]warning[/] {w}")


def status_section(ctx: Context) -> dict[str, Any]:
    """The `interview` object of `status --json` (interview stations only)."""
    from agent.interview.commands import service_status

    svc = service_status(ctx)
    row = ctx.ledger.one("SELECT * FROM interview_sessions ORDER BY requested_at DESC LIMIT 1")
    session = None
    if row is not None:
        open_gaps = ctx.ledger.query(
            "SELECT id FROM interview_gaps WHERE session_id=? AND end IS NULL", (row["id"],)
        )
        session = {
            "id": row["id"],
            "state": row["state"],
            "case_number": row["case_number"],
            "requested_at": row["requested_at"],
            "started_at": row["started_at"],
            "ended_at": row["ended_at"],
            "coverage": row["coverage"],
            "open_gaps": len(open_gaps),
        }
    return {
        "room": ctx.cfg.interview.room or ctx.station_id,
        "service_running": svc is not None,
        "video_only": None if svc is None else svc.get("video_only"),
        "lamp": None if svc is None else svc.get("lamp"),
        "panel": None if svc is None else svc.get("panel"),
        "cameras": {} if svc is None else svc.get("cameras", {}),
        "session": session,
    }
