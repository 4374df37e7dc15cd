"""What the dock console shows, read from the ledger by the daemon (docs/console.md).

`bays()`: one entry per docked recorder with a clear state, `copying`, `safe` (safe to undock:
everything found is copied and verified) or `attention` (with reason codes the console puts
into words); `health()`: the station strip; `own_recordings()`: an officer's recent
recordings, only those the gate counts as theirs (worn or collected by them). Reads only; no
evidence content, only counts, sizes, times and case fields.
"""

from __future__ import annotations

import json
from typing import Any

from agent.actions import status
from agent.compliance.engine import classify, warn_window
from agent.core import clock
from agent.ledger import status_query as sq
from agent.station.context import Context
from agent.station.timesync import clock_synced
from agent.tagging import metadata as md

PENDING = ("discovered", "copying")
COPIED = ("spooled", "archived", "released")
SPOOL_LOW_MARGIN = 1 << 30  # warn a GiB above ingest.spool_reserve_bytes


def _local(ctx: Context, text: str | None) -> str | None:
    when = clock.parse_iso(text)
    if when is None:
        return None
    return clock.iso(clock.local(when.replace(microsecond=0), ctx.cfg.station.timezone))


def _reasons(ctx: Context, rec: dict[str, Any], counts: dict[str, tuple[int, int]]) -> list[str]:
    out = []
    if rec["quarantined"] or counts.get("quarantined", (0, 0))[0]:
        out.append("quarantined")
    if rec["status"] == "unknown" or str(rec["serial"]).startswith("refused-"):
        out.append("unknown_recorder")
    if counts.get("failed", (0, 0))[0]:
        out.append("failed")
    offset = rec["clock_offset_s"]
    if offset is not None and abs(offset) > ctx.cfg.recorders.clock_threshold_seconds:
        out.append("clock_off")
    if rec["last_error"]:
        out.append("device_error")
    return out


def _bay(ctx: Context, rec: dict[str, Any], counts: dict[str, tuple[int, int]]) -> dict[str, Any]:
    found = sum(n for n, _b in counts.values())
    copied = sum(counts.get(s, (0, 0))[0] for s in COPIED)
    total_b = sum(b for _n, b in counts.values())
    copied_b = sum(counts.get(s, (0, 0))[1] for s in COPIED)
    pending = sum(counts.get(s, (0, 0))[0] for s in PENDING)
    reasons = _reasons(ctx, rec, counts)
    state = "attention" if reasons else ("copying" if pending else "safe")
    archived = sum(counts.get(s, (0, 0))[0] for s in ("archived", "released"))
    return {
        "serial": rec["serial"],
        "vendor": rec["vendor"],
        "port": rec["port"],
        "officer": rec["officer"],
        "officer_name": rec["officer_name"],
        "battery": rec["battery"],
        "charging": rec["charging"],
        "found": found,
        "copied": copied,
        "verified": copied,  # a copy counts only once re-read from disk matched (spooled)
        "pending": pending,
        "failed": counts.get("failed", (0, 0))[0],
        "bytes_total": total_b,
        "bytes_copied": copied_b,
        "percent": 100.0 if not total_b else round(100.0 * copied_b / total_b, 1),
        "state": state,
        "reasons": reasons,
        "last_error": rec["last_error"],
        "clock_offset_s": rec["clock_offset_s"],
        # Under release_after = "archived" the recorder is erased at a later dock, once the
        # archive holds the copies; say so on the tile.
        "erase_later": ctx.cfg.ingest.release_after == "archived" and archived < found,
        "last_docked": _local(ctx, rec["last_docked"]),
    }


def bays(ctx: Context) -> list[dict[str, Any]]:
    by_device = sq.counts_by_device(ctx.ledger.connect())
    ids = {
        str(r["serial"]): int(r["id"])
        for r in ctx.ledger.query("SELECT id, serial FROM devices WHERE docked = 1")
    }
    return [
        _bay(ctx, rec, by_device.get(ids[rec["serial"]], {}))
        for rec in status.recorders(ctx)
        if rec["docked"] and rec["serial"] in ids
    ]


def health(ctx: Context) -> dict[str, Any]:
    free = ctx.spool_free_bytes()
    reserve = ctx.cfg.ingest.spool_reserve_bytes
    work = status.open_work(ctx)
    archive_error = ctx.ledger.get_kv("archive.last_error")
    return {
        "at": _local(ctx, clock.iso(clock.now())),
        "timezone": ctx.cfg.station.timezone,
        "spool_free_bytes": free,
        "spool_low": free < reserve + SPOOL_LOW_MARGIN,
        "archive_reachable": archive_error is None,
        "archive_error": archive_error,
        "clock_synced": clock_synced(),
        "deadlines_at_risk": work["deadlines"]["at_risk"],
        "deadlines_missed": work["deadlines"]["missed"],
        "quarantined": work.get("quarantined", 0),
    }


def own_recordings(ctx: Context, officer_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """An officer's recent recordings, newest first: worn by them or collected (采集人) by them."""
    now, warn = clock.now(), warn_window(ctx)
    rows = ctx.ledger.query(
        f"{sq.BASE_SQL} WHERE r.officer_id = ? OR json_extract(m.fields, '$.collector') = ?"
        f" ORDER BY {sq.RECENT} DESC, r.id DESC LIMIT ?",
        (officer_id, officer_id, limit),
    )
    out = []
    for r in rows:
        start = r["start_corrected"] or r["start"]
        end = r["end_corrected"] or r["end"]
        s, e = clock.parse_iso(start), clock.parse_iso(end)
        doc = {**md.empty(), **json.loads(r["metadata_fields"])} if r["metadata_fields"] else None
        out.append(
            {
                "id": r["id"],
                "serial": r["serial"],
                "start": _local(ctx, start),
                "duration_s": round((e - s).total_seconds(), 1) if s and e else None,
                "state": r["state"],
                "deadline": _local(ctx, r["deadline"]),
                "deadline_status": classify(r, now, warn),
                "metadata": doc,
                "metadata_version": r["metadata_version"],
            }
        )
    return out


def held(ctx: Context, limit: int = 200) -> list[dict[str, Any]]:
    """Quarantined recordings not yet rejected, oldest first: what a custodian decides on."""
    rows = ctx.ledger.query(
        f"{sq.BASE_SQL} WHERE r.state = 'quarantined'"
        " AND COALESCE(r.quarantine_decision, '') != 'rejected'"
        f" ORDER BY {sq.RECENT}, r.id LIMIT ?",
        (limit,),
    )
    return [
        {
            "id": r["id"],
            "serial": r["serial"],
            "officer": r["officer_id"],
            "start": _local(ctx, r["start_corrected"] or r["start"]),
            "reason": r["reason"],
            "size": r["size"],
        }
        for r in rows
    ]
