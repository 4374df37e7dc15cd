"""The `status --json` document (a contract: fields may be added, never renamed)."""

from __future__ import annotations

import json
import time
from typing import Any

from agent import __version__
from agent.archive.backlog import archive_backlog
from agent.compliance.engine import classify, warn_window
from agent.core import clock
from agent.recorders.recclock import station_clock_trusted
from agent.station.context import Context
from agent.station.timesync import clock_synced
from agent.tagging import metadata as md

STARTED = time.monotonic()


def station(ctx: Context) -> dict[str, Any]:
    return {
        "id": ctx.station_id,
        "role": ctx.cfg.station.role,
        "version": __version__,
        "clock_synced": clock_synced(),
        "clock_trusted": station_clock_trusted(ctx)[0],
        "spool_free_bytes": ctx.spool_free_bytes(),
        "timezone": ctx.cfg.station.timezone,
        "upload_backlog": archive_backlog(ctx),
    }


def _recording_counts(ctx: Context) -> dict[int, dict[str, Any]]:
    counts: dict[int, dict[str, Any]] = {}
    for r in ctx.ledger.query(
        "SELECT device_id, state, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes"
        " FROM recordings GROUP BY device_id, state"
    ):
        c = counts.setdefault(
            r["device_id"], {"states": {}, "pending_files": 0, "pending_bytes": 0}
        )
        c["states"][r["state"]] = r["n"]
        if r["state"] in ("discovered", "copying", "failed"):
            c["pending_files"] += r["n"]
            c["pending_bytes"] += r["bytes"]
    return counts


def recorders(ctx: Context) -> list[dict[str, Any]]:
    out = []
    counts = _recording_counts(ctx)
    inventory = ctx.cfg.inventory.file is not None
    for d in ctx.ledger.query("SELECT * FROM devices ORDER BY serial"):
        status = d["inventory_status"] or ("unregistered" if not d["registered"] else "unknown")
        c = counts.get(d["id"], {"states": {}, "pending_files": 0, "pending_bytes": 0})
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
                # From the ledger row (updated at every sighting and inventory import), so
                # the status read stays a pure read of one snapshot.
                "quarantined": inventory and not d["registered"],
                "docked": bool(d["docked"]),
                "port": d["port"],
                "driver": d["driver"],
                "battery": d["battery_pct"],
                "charging": None if d["charging"] is None else bool(d["charging"]),
                "clock_offset_s": d["clock_offset_s"],
                "clock_checked_at": d["clock_checked_at"],
                "clock_set_at": d["clock_set_at"],
                "login_failures": d["login_failures"],
                "last_error": d["last_error"],
                "last_error_at": d["last_error_at"],
                "last_docked": d["last_docked"],
                "last_seen": d["last_seen"],
                "volume": d["volume"] if d["docked"] else None,
                "recordings": c["states"],
                "pending_files": c["pending_files"],
                "pending_bytes": c["pending_bytes"],
                "unit_name": d["unit_name"],
            }
        )
    return out


def recordings(
    ctx: Context,
    limit: int | None = None,
    state: str | None = None,
    since: str | None = None,
    history: bool = False,
) -> list[dict[str, Any]]:
    """Recordings, newest first; `history` adds every metadata version (`metadata_history`)."""
    sql = (
        "SELECT r.*, d.serial, m.fields AS metadata_fields FROM recordings r"
        " JOIN devices d ON d.id = r.device_id LEFT JOIN metadata_versions m"
        " ON m.recording_id = r.id AND m.version = r.metadata_version WHERE 1=1"
    )
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
    now, warn = clock.now(), warn_window(ctx)
    conn = ctx.ledger.connect()
    for r in ctx.ledger.query(sql, tuple(params)):
        doc = r["metadata_fields"]
        out.append(
            {
                "id": r["id"],
                "serial": r["serial"],
                "officer": r["officer_id"],
                "unit": r["unit_id"],
                "source_path": r["source_path"],
                # Corrected for the recorder's clock offset when one was measured at dock;
                # the recorder's own times stay in start_original / end_original.
                "start": r["start_corrected"] or r["start"],
                "end": r["end_corrected"] or r["end"],
                "start_original": r["start"],
                "end_original": r["end"],
                "clock_offset_s": r["clock_offset_s"],
                "time_source": _time_source(r),
                "state": r["state"],
                "quarantine_decision": r["quarantine_decision"],
                "reason": r["reason"],
                "sha256": r["sha256"],
                "size": r["size"],
                "playable": None if r["playable"] is None else bool(r["playable"]),
                "deadline": r["deadline"],
                "deadline_met_at": r["deadline_met_at"],
                "deadline_status": classify(r, now, warn),
                "archive_ref": r["archive_ref"],
                "archived_at": r["archived_at"],
                "archive_error": r["archive_error"],
                "spool_removed_at": r["spool_removed_at"],
                "metadata": {**md.empty(), **json.loads(doc)} if doc else None,
                "metadata_version": r["metadata_version"],
            }
        )
        if history:
            out[-1]["metadata_history"] = md.history(conn, r["id"])
    return out


def _time_source(r: Any) -> dict[str, Any]:
    src: dict[str, Any] = {"start": r["start_source"], "end": r["end_source"]}
    if r["clock_offset_s"] is not None:
        src["correction"] = "recorder_clock_offset"
    return src


def document(ctx: Context, **filters: Any) -> dict[str, Any]:
    st = station(ctx)
    # One snapshot: per-recorder counts and the recordings list must tell the same story.
    with ctx.ledger.snapshot():
        doc = {
            "station": st,
            "recorders": recorders(ctx),
            "recordings": recordings(ctx, **filters),
        }
    if ctx.cfg.station.role == "interview":
        from agent.interview.report import status_section

        doc["interview"] = status_section(ctx)
    return doc


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False)
