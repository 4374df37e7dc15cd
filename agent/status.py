"""The `status --json` document (a contract: fields may be added, never renamed)."""

from __future__ import annotations

import json
import time
from typing import Any

from agent import __version__
from agent.context import Context
from agent.timesync import clock_synced

STARTED = time.monotonic()


def station(ctx: Context) -> dict[str, Any]:
    return {
        "id": ctx.station_id,
        "role": ctx.cfg.station.role,
        "version": __version__,
        "clock_synced": clock_synced(),
        "spool_free_bytes": ctx.spool_free_bytes(),
        "timezone": ctx.cfg.station.timezone,
    }


def recorders(ctx: Context) -> list[dict[str, Any]]:
    out = []
    for d in ctx.ledger.query("SELECT * FROM devices ORDER BY serial"):
        status = d["inventory_status"] or ("unregistered" if not d["registered"] else "unknown")
        out.append(
            {
                "vendor": d["vendor"],
                "serial": d["serial"],
                "serial_source": d["serial_source"],
                "officer": d["officer_id"],
                "officer_name": d["officer_name"],
                "unit": d["unit_id"],
                "status": status,
                "registered": bool(d["registered"]),
                "docked": bool(d["docked"]),
                "battery": d["battery_pct"],
                "clock_offset_s": d["clock_offset_s"],
                "last_docked": d["last_docked"],
                "volume": d["volume"] if d["docked"] else None,
            }
        )
    return out


def recordings(
    ctx: Context, limit: int | None = None, state: str | None = None, since: str | None = None
) -> list[dict[str, Any]]:
    sql = "SELECT r.*, d.serial FROM recordings r JOIN devices d ON d.id = r.device_id WHERE 1=1"
    params: list[Any] = []
    if state:
        sql += " AND r.state = ?"
        params.append(state)
    if since:
        sql += " AND COALESCE(r.start, r.discovered_at) >= ?"
        params.append(since)
    sql += " ORDER BY COALESCE(r.start, r.discovered_at) DESC, r.id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    out = []
    for r in ctx.ledger.query(sql, tuple(params)):
        out.append(
            {
                "id": r["id"],
                "serial": r["serial"],
                "officer": r["officer_id"],
                "unit": r["unit_id"],
                "source_path": r["source_path"],
                "start": r["start"],
                "end": r["end"],
                "time_source": {"start": r["start_source"], "end": r["end_source"]},
                "state": r["state"],
                "reason": r["reason"],
                "sha256": r["sha256"],
                "size": r["size"],
                "playable": None if r["playable"] is None else bool(r["playable"]),
                "deadline": r["deadline"],
                "deadline_met_at": r["deadline_met_at"],
                "metadata": None,
                "metadata_version": 0,
            }
        )
    return out


def document(ctx: Context, **filters: Any) -> dict[str, Any]:
    doc = {
        "station": station(ctx),
        "recorders": recorders(ctx),
        "recordings": recordings(ctx, **filters),
    }
    if ctx.cfg.station.role == "interview":
        from agent.interview.report import status_section

        doc["interview"] = status_section(ctx)
    return doc


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False)
