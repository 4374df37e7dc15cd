"""The compliance engine: per recording, per recorder and per unit, what the rules say now.

- recording: deadline status met / met_late / open / at_risk / missed (agent.rules.workcal);
- recorder: in service but not docked for `compliance.not_docked_working_days` working days
  (its footage may be sitting on it, unseen by the deadline clock);
- unit: recorders in service vs. active officers (agent.rules.ratio), from the roster, the
  inventory and when this station last saw each recorder;
- untagged: recordings without a case number older than `compliance.untagged_after_hours`.

`ComplianceMonitor.step` runs in the daemon's `compliance` thread and writes the
`deadline.at_risk`, `deadline.missed` and `recorder.not_docked` events to the outbox once
each; `compliance_summary` is the retained `evidence/<station>/compliance` payload.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agent.compliance import casefile
from agent.compliance.calendar_check import station_warning
from agent.core import clock
from agent.ledger import events
from agent.rules.ratio import Recorder, UnitRatio, recorders_from_inventory, unit_ratios
from agent.rules.workcal import DeadlineStatus, WorkingDaysRule, deadline, deadline_status
from agent.station.context import Context

logger = logging.getLogger(__name__)

# Recording columns every check reads, with the current metadata's case number and category.
RECORDING_SQL = (
    "SELECT r.id, r.sha256, r.state, r.officer_id, r.unit_id,"
    " COALESCE(r.start_corrected, r.start) AS start, COALESCE(r.end_corrected, r.end) AS end,"
    " r.deadline,"
    " r.deadline_met_at, r.metadata_version, r.discovered_at, d.serial, d.vendor,"
    " json_extract(m.fields, '$.case_number') AS case_number,"
    " json_extract(m.fields, '$.category') AS category"
    " FROM recordings r JOIN devices d ON d.id = r.device_id"
    " LEFT JOIN metadata_versions m ON m.recording_id = r.id AND m.version = r.metadata_version"
)


def warn_window(ctx: Context) -> timedelta:
    return timedelta(hours=ctx.cfg.compliance.warn_before_hours)


def classify(row: sqlite3.Row, now: datetime, warn: timedelta) -> DeadlineStatus | None:
    """The deadline status of one recording row; None when it has no deadline."""
    due = clock.parse_iso(row["deadline"])
    if due is None:
        return None
    return deadline_status(due, clock.parse_iso(row["deadline_met_at"]), now, warn)


def recording_dict(row: sqlite3.Row, status: str | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sha256": row["sha256"],
        "serial": row["serial"],
        "officer": row["officer_id"],
        "unit": row["unit_id"],
        "start": row["start"],
        "end": row["end"],
        "state": row["state"],
        "deadline": row["deadline"],
        "deadline_met_at": row["deadline_met_at"],
        "deadline_status": status,
        "case_number": row["case_number"],
        "category": row["category"],
        "metadata_version": row["metadata_version"],
    }


def _last_seen(d: sqlite3.Row, now: datetime) -> datetime | None:
    if d["docked"]:
        return now
    seen = [
        t for t in (clock.parse_iso(d["last_docked"]), clock.parse_iso(d["last_undocked"])) if t
    ]
    return max(seen) if seen else None


@dataclass
class Snapshot:
    """Everything the engine found at `now`."""

    now: datetime
    unmet: list[dict[str, Any]] = field(default_factory=list)  # deadline not met yet
    not_docked: list[dict[str, Any]] = field(default_factory=list)
    untagged: int = 0  # recordings without a case number, any age
    untagged_overdue: int = 0  # of those, older than compliance.untagged_after_hours
    units: list[UnitRatio] = field(default_factory=list)
    local_units: set[str] = field(default_factory=set)  # units of this station's roster
    problems: list[str] = field(default_factory=list)  # roster/inventory file errors
    cases: list[dict[str, Any]] = field(default_factory=list)  # case files due or overdue


def unmet_recordings(ctx: Context, now: datetime) -> list[dict[str, Any]]:
    warn = warn_window(ctx)
    rows = ctx.ledger.query(
        RECORDING_SQL + " WHERE r.deadline_met_at IS NULL AND r.deadline IS NOT NULL"
    )
    out = [recording_dict(r, classify(r, now, warn)) for r in rows]
    return sorted(out, key=lambda r: clock.parse_iso(r["deadline"]) or now)


# When a recording was made, as indexed by `recordings_made` (migration 0009): keep in step.
MADE_SQL = "COALESCE(r.end_corrected, r.end, r.start_corrected, r.start, r.discovered_at)"


def made_range_start(at: datetime) -> str:
    """A lower bound for `MADE_SQL >= ?`: stored times carry different UTC offsets, so
    string order is only right to within a day; callers test each row exactly."""
    return clock.iso(at - timedelta(days=1)) or ""


def untagged_counts(ctx: Context, now: datetime) -> tuple[int, int]:
    """(recordings without a case number, those older than `untagged_after_hours`).

    The total is a trigger-kept counter; only the young ones (made within the age limit) are
    read, by an index range, so this costs O(recent), not O(history).
    """
    age = timedelta(hours=ctx.cfg.compliance.untagged_after_hours)
    conn = ctx.ledger.connect()
    row = conn.execute("SELECT n FROM ledger_counters WHERE name = 'untagged'").fetchone()
    total = int(row[0]) if row else 0
    young = 0
    for r in conn.execute(
        RECORDING_SQL + f" WHERE {MADE_SQL} >= ?"
        " AND json_extract(m.fields, '$.case_number') IS NULL",
        (made_range_start(now - age),),
    ):
        made = clock.parse_iso(r["end"]) or clock.parse_iso(r["discovered_at"]) or now
        young += now - made <= age
    return total, total - young


def recorders_not_docked(ctx: Context, now: datetime) -> list[dict[str, Any]]:
    """In-service recorders this station saw, not docked for N working days."""
    days = ctx.cfg.compliance.not_docked_working_days
    inventory = ctx.rosters.inventory()
    status = {(i.vendor, i.serial): str(i.status) for i in inventory or ()}
    out = []
    for d in ctx.ledger.query("SELECT * FROM devices WHERE docked = 0 ORDER BY serial"):
        if inventory is not None and status.get((d["vendor"], d["serial"])) != "in_service":
            continue  # repair / lost / retired, or not ours (quarantined when docked)
        seen = _last_seen(d, now)
        if seen is None:
            continue
        limit = deadline(seen, WorkingDaysRule(days=days), ctx.calendar)
        if now > limit:
            out.append(
                {
                    "vendor": d["vendor"],
                    "serial": d["serial"],
                    "officer": d["officer_id"],
                    "unit": d["unit_id"],
                    "last_seen": clock.iso(seen),
                    "limit": clock.iso(limit),
                    "working_days": days,
                }
            )
    return out


def ratios(ctx: Context, now: datetime) -> tuple[list[UnitRatio], set[str]]:
    """Per-unit ratio compliance and the units of this station's roster."""
    if not ctx.rosters.roster_configured:
        return [], set()
    officers = ctx.rosters.officers()
    devices = ctx.ledger.query("SELECT * FROM devices")
    seen = {(d["vendor"], d["serial"]): _last_seen(d, now) for d in devices}
    inventory = ctx.rosters.inventory()
    if inventory is not None:
        last = {k: v for k, v in seen.items() if v is not None}
        recorders = recorders_from_inventory(inventory, last)
    else:
        # No inventory: the recorders seen here count for the unit their device info names.
        recorders = [
            Recorder(
                d["vendor"],
                d["serial"],
                d["unit_id"],
                "in_service",
                seen[(d["vendor"], d["serial"])],
            )
            for d in devices
        ]
    cc = ctx.cfg.compliance
    units = unit_ratios(officers, recorders, cc.ratio_by_unit, cc.ratio, cc.not_seen_days, now)
    return units, {o.unit_id for o in officers}


def evaluate(ctx: Context, now: datetime | None = None) -> Snapshot:
    now = now or clock.now()
    snap = Snapshot(now)
    snap.problems = ctx.rosters.refresh()
    snap.unmet = unmet_recordings(ctx, now)
    snap.untagged, snap.untagged_overdue = untagged_counts(ctx, now)
    snap.not_docked = recorders_not_docked(ctx, now)
    snap.units, snap.local_units = ratios(ctx, now)
    snap.cases = casefile.open_case_files(ctx, now)
    return snap


def unit_payload(u: UnitRatio) -> dict[str, Any]:
    """One unit's ratio as published (the same object as the fleet's units/<unit>/ratio)."""
    return {
        "unit": u.unit_id,
        "unit_name": u.unit_name,
        "active_officers": u.active_officers,
        "recorders_counted": u.recorders_counted,
        "ratio": u.ratio,
        "required": u.required,
        "compliant": u.compliant,
        "officers_per_recorder": (
            round(u.active_officers / u.recorders_counted, 2) if u.recorders_counted else None
        ),
        "not_counted": [{"serial": s, "reason": r} for s, r in u.not_counted],
    }


def summary(ctx: Context, snap: Snapshot) -> dict[str, Any]:
    """The `evidence/<station>/compliance` payload (retained): counts, no evidence content.

    `deadlines` and `untagged` hold integers only (the payload's schema); the details are
    beside them.
    """
    due = sum(r["deadline_status"] == "at_risk" for r in snap.unmet)
    overdue = sum(r["deadline_status"] == "missed" for r in snap.unmet)
    upcoming = (r["deadline"] for r in snap.unmet if r["deadline_status"] != "missed")
    return {
        "station": ctx.station_id,
        "at": clock.iso(snap.now.astimezone(ctx.calendar.tz)),
        # open: not stored yet (due and overdue included); due: at risk; overdue: missed.
        "deadlines": {"open": len(snap.unmet), "due": due, "overdue": overdue},
        "next_deadline": next(upcoming, None),
        "warn_before_hours": ctx.cfg.compliance.warn_before_hours,
        "untagged": snap.untagged,
        "untagged_overdue": snap.untagged_overdue,
        "untagged_after_hours": ctx.cfg.compliance.untagged_after_hours,
        "recorders_not_docked": len(snap.not_docked),
        "units": [unit_payload(u) for u in snap.units if u.unit_id in snap.local_units],
        "problems": snap.problems,
        "calendar_warning": station_warning(ctx, snap.now, keep=True),
        "case_files": case_files_payload(ctx, snap),
    }


MAX_CASES_LISTED = 200  # the counts are complete; `report` lists every case


def case_files_payload(ctx: Context, snap: Snapshot) -> dict[str, Any]:
    """Concluded cases whose file is due or overdue (case numbers and dates, no parties)."""
    open_ = [c for c in snap.cases if c["status"] in ("due", "overdue")]
    keys = ("case_number", "concluded_on", "due_on", "status", "not_archived")
    return {
        "days": ctx.cfg.compliance.case_file_days,
        "due": sum(c["status"] == "due" for c in open_),
        "overdue": sum(c["status"] == "overdue" for c in open_),
        "cases": [{k: c[k] for k in keys} for c in open_[:MAX_CASES_LISTED]],
    }


def compliance_summary(ctx: Context, now: datetime | None = None) -> dict[str, Any]:
    return summary(ctx, evaluate(ctx, now))


class ComplianceMonitor:
    """The daemon's `compliance` thread body: evaluate, alert once, keep the summary."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.last_summary: dict[str, Any] | None = None

    def step(self, now: datetime | None = None) -> float:
        snap = evaluate(self.ctx, now)
        with self.ctx.ledger.tx() as conn:
            for r in snap.unmet:
                if r["deadline_status"] in ("at_risk", "missed"):
                    fields = {k: r[k] for k in ("serial", "officer", "unit", "deadline", "state")}
                    kind = f"deadline.{r['deadline_status']}"
                    _once(conn, kind, r["id"], r["deadline"], recording=r["id"], **fields)
            for d in snap.not_docked:
                subject = f"{d['vendor']}/{d['serial']}"
                fields = {k: d[k] for k in ("serial", "vendor", "officer", "unit", "working_days")}
                _once(
                    conn,
                    "recorder.not_docked",
                    subject,
                    d["last_seen"],
                    **fields,
                    last_seen=d["last_seen"],
                )
        self.last_summary = summary(self.ctx, snap)
        return self.ctx.cfg.compliance.interval_seconds


def _once(conn: sqlite3.Connection, type_: str, subject: str, key: str, **fields: Any) -> None:
    cur = conn.execute(
        "INSERT OR IGNORE INTO compliance_alerts(type, subject, key, at) VALUES(?,?,?,?)",
        (type_, subject, key, clock.iso(clock.now())),
    )
    if cur.rowcount == 1:
        events.emit(conn, type_, **fields)
        logger.warning("%s: %s", type_, ", ".join(f"{k}={v}" for k, v in fields.items() if v))
