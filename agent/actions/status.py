"""The `status --json` document (a contract: fields may be added, never renamed)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any, TextIO

from agent import __version__
from agent.archive.backlog import archive_backlog
from agent.compliance.calendar_check import station_warning
from agent.compliance.engine import classify, warn_window
from agent.core import clock
from agent.core.wiretime import localize
from agent.ledger import recordings as rec
from agent.ledger import status_query as sq
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
        "calendar_warning": station_warning(ctx),
    }


def _recording_counts(ctx: Context) -> dict[int, dict[str, Any]]:
    counts: dict[int, dict[str, Any]] = {}
    for device_id, states in sq.counts_by_device(ctx.ledger.connect()).items():
        c = counts.setdefault(device_id, {"states": {}, "pending_files": 0, "pending_bytes": 0})
        for state, (n, nbytes) in states.items():
            c["states"][state] = n
            if state in ("discovered", "copying", "failed"):
                c["pending_files"] += n
                c["pending_bytes"] += nbytes
    return counts


def _unit_claim(d: sqlite3.Row) -> str | None:
    claim = d["reported_unit_id"]
    return None if claim is None or claim == d["unit_id"] else str(claim)


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
                # The recorder's own unit claim, only when the inventory counts it elsewhere.
                "unit_reported": _unit_claim(d),
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
    recorder: str | None = None,
    before: str | None = None,
) -> list[dict[str, Any]]:
    """Recordings, newest first; `history` adds every metadata version (`metadata_history`)."""
    f = sq.Filters(limit=limit, state=state, since=since, recorder=recorder, before=before)
    return list(iter_recordings(ctx, f, history))


def iter_recordings(ctx: Context, f: sq.Filters, history: bool = False) -> Iterator[dict[str, Any]]:
    """The `recordings` objects of `status --json`, one at a time (constant memory)."""
    now, warn = clock.now(), warn_window(ctx)
    conn = ctx.ledger.connect()
    for r in sq.rows(conn, f):
        item = _recording(r, now, warn)
        if history:
            item["metadata_history"] = md.history(conn, r["id"])
        yield item


def _recording(r: Any, now: Any, warn: Any) -> dict[str, Any]:
    doc = r["metadata_fields"]
    return {
        "id": r["id"],
        "serial": r["serial"],
        "officer": r["officer_id"],
        "unit": r["unit_id"],
        "source_path": r["source_path"],
        **rec.effective_times(r),
        "time_source": _time_source(r),
        "state": r["state"],
        "quarantine_decision": r["quarantine_decision"],
        "reason": r["reason"],
        "sha256": r["sha256"],
        "sm3": r["sm3"],  # crypto.suite = "sm" only (null otherwise)
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


def _time_source(r: Any) -> dict[str, Any]:
    src: dict[str, Any] = {"start": r["start_source"], "end": r["end_source"]}
    if r["clock_offset_s"] is not None:
        src["correction"] = "recorder_clock_offset"
    return src


AT_RISK_SHOWN = 20  # deadlines at risk listed by `status`; the rest are counted


def open_work(ctx: Context) -> dict[str, Any]:
    """What an operator acts on now: counts of unfinished states and the unmet deadlines."""
    conn = ctx.ledger.connect()
    by_state = sq.counts_by_state(conn)
    work = {s: by_state.get(s, (0, 0))[0] for s in sq.OPEN_STATES}
    now, warn = clock.now(), warn_window(ctx)
    risky: list[dict[str, Any]] = []
    counts = {"open": 0, "at_risk": 0, "missed": 0}
    for r in sq.unmet(conn):
        status = classify(r, now, warn) or "open"
        counts["open"] += 1
        if status in ("at_risk", "missed"):
            counts[status] += 1
            if len(risky) < AT_RISK_SHOWN:
                risky.append(
                    {k: r[k] for k in ("id", "sha256", "serial", "state", "deadline")}
                    | {"deadline_status": status}
                )
    return {
        **work,
        "deadlines": counts,
        "deadlines_at_risk": risky,
        "outbox_pending": sq.counter(conn, "outbox"),
        "outbox_dropped": int(ctx.ledger.get_kv("outbox.dropped") or 0),
    }


def document(
    ctx: Context, *, history: bool = False, with_recordings: bool = True, **filters: Any
) -> dict[str, Any]:
    """The `status --json` object. `limit` None or 0 lists every match (see `stream`)."""
    f = sq.Filters(**filters)
    st = station(ctx)
    # One snapshot: per-recorder counts and the recordings list must tell the same story.
    with ctx.ledger.snapshot() as conn:
        doc: dict[str, Any] = {
            "station": st,
            "recorders": recorders(ctx),
            "open_work": open_work(ctx),
            "recordings_total": sq.total(conn, f),
            "truncated": False,
            "next_before": None,
        }
        if with_recordings:
            page = sq.Filters(**{**filters, "limit": (f.limit + 1) if f.limit else None})
            items = list(iter_recordings(ctx, page, history))
            if f.limit and len(items) > f.limit:
                items = items[: f.limit]
                doc["truncated"], doc["next_before"] = True, items[-1]["id"]
            doc["recordings"] = items
    from agent.ingest.spool import list_orphans

    doc["spool_orphans"] = list_orphans(ctx)  # moved aside by recovery, relative to the spool
    from agent.ingest.recopy import kept

    doc["spool_recopied"] = kept(ctx)  # re-copies that differed from the first copy
    if ctx.cfg.station.role == "interview":
        from agent.interview.report import status_section

        doc["interview"] = status_section(ctx)
    return doc


def stream(ctx: Context, out: TextIO, *, history: bool = False, **filters: Any) -> None:
    """`status --json --limit 0`: the same object, recordings written one by one."""
    f = sq.Filters(**{**filters, "limit": None})
    tz = ctx.cfg.station.timezone  # one clock on the wire, item by item (agent.core.wiretime)
    with ctx.ledger.snapshot():
        head = document(ctx, history=history, with_recordings=False, **filters)
        text = to_json(localize(head, tz))
        out.write(text[: text.rindex("}")].rstrip() + ',\n  "recordings": [')
        sep = "\n    "
        for item in iter_recordings(ctx, f, history):
            out.write(sep + json.dumps(localize(item, tz), ensure_ascii=False))
            sep = ",\n    "
        out.write("\n  ]\n}\n")


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False)
