"""`evidence-agent report`: the statistics the seeds ask for (统计分析), three ways.

`build` makes the stable JSON document (English keys and status codes, whatever the
language); `print_tables` shows it as rich tables and `write_csv` as CSV for Excel/WPS
(UTF-8 with BOM), both with Chinese or English headings. Deadlines, tagging and the
recorders not docked are filtered by period and unit; the ratio is always the current one.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from sqlite3 import Row
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.compliance import casefile
from agent.compliance import report_query as rq
from agent.compliance.engine import classify, evaluate, recording_dict, unit_payload, warn_window
from agent.compliance.report_text import reason, t
from agent.core import clock
from agent.station.context import Context

SCHEMA = "evidence-agent/report/1"
STATUSES = rq.STATUSES
SECTIONS = ("summary", "recordings", "units", "recorders", "cases")
LIMIT = 1000  # recordings listed by default (`report --limit`)


def _status(row: Row, now: datetime, warn: timedelta) -> str | None:
    # A met deadline needs no calendar: in time or late (workcal.deadline_status's rule).
    due, met = row["deadline"], row["deadline_met_at"]
    if due and met:
        return "met" if datetime.fromisoformat(met) <= datetime.fromisoformat(due) else "met_late"
    return classify(row, now, warn)


def _item(row: Row, now: datetime, warn: timedelta, age: timedelta) -> dict[str, Any]:
    item = recording_dict(row, _status(row, now, warn))
    item["tagged"] = item["case_number"] is not None
    item["untagged_overdue"] = False
    if not item["tagged"]:
        made = clock.parse_iso(row["end"]) or clock.parse_iso(row["discovered_at"])
        item["untagged_overdue"] = now - (made or now) > age
    return item


def build(
    ctx: Context,
    *,
    start: date | None = None,
    end: date | None = None,
    unit: str | None = None,
    now: datetime | None = None,
    limit: int | None = LIMIT,
    everything: bool = False,
) -> dict[str, Any]:
    """The report document: recordings made (local date of their end) in [start, end].

    Counts cover every recording of the period (aggregated in SQL, `report_query`);
    `recordings` lists those needing attention (at risk, missed, met late, untagged), or
    every one with `everything`, at most `limit` of them (None or 0: no bound).
    """
    snap = evaluate(ctx, now)
    warn = warn_window(ctx)
    cc = ctx.cfg.compliance
    age = timedelta(hours=cc.untagged_after_hours)
    period = rq.Period(start, end, unit, snap.now, warn, age)
    conn, tz = ctx.ledger.connect(), ctx.calendar.tz
    counts = rq.counts(conn, period, tz)
    bound = (limit + 1) if limit else None
    rows = [
        _item(r, snap.now, warn, age)
        for r in rq.attention_rows(conn, period, tz, bound, everything)
    ]
    truncated = bound is not None and len(rows) > (limit or 0)
    rows = rows[:limit] if limit else rows
    units = [u for u in snap.units if unit is None or u.unit_id == unit]
    return {
        "schema": SCHEMA,
        "station": ctx.station_id,
        "generated_at": clock.iso(snap.now.astimezone(ctx.calendar.tz)),
        "timezone": ctx.cfg.station.timezone,
        "period": {
            "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
        },
        "unit": unit,
        "deadlines": {
            "total": counts.total,
            **counts.statuses,
            "warn_before_hours": cc.warn_before_hours,
        },
        "untagged": {
            "count": counts.untagged,
            "overdue": counts.untagged_overdue,
            "older_than_hours": cc.untagged_after_hours,
        },
        "recordings": rows,
        "recordings_listed": "all" if everything else "attention",
        "recordings_matching": counts.total if everything else counts.attention,
        "truncated": truncated,
        "by_unit": [
            {"unit": u, **c} for u, c in sorted(counts.units.items(), key=lambda kv: kv[0] or "")
        ],
        "roster_configured": ctx.rosters.roster_configured,
        "units": [{**unit_payload(u), "local": u.unit_id in snap.local_units} for u in units],
        "recorders_not_docked": [d for d in snap.not_docked if unit is None or d["unit"] == unit],
        "not_docked_working_days": cc.not_docked_working_days,
        # Concluded cases (whatever the period and unit): their files are due in N days.
        "case_files": _case_files(ctx, snap.now),
        "problems": snap.problems,
    }


def _case_files(ctx: Context, now: datetime) -> dict[str, Any]:
    cases = casefile.case_files(ctx, now)
    return {
        "days": ctx.cfg.compliance.case_file_days,
        "due": sum(c["status"] == "due" for c in cases),
        "overdue": sum(c["status"] == "overdue" for c in cases),
        "cases": cases,
    }


# --- tables: one list of rows per section, shared by rich and CSV -------------------------------


def _yes(lang: str, value: bool) -> str:
    return t(lang, "yes" if value else "no")


Rows = tuple[list[str], list[list[Any]]]  # (headings, rows)

RECORDING_COLUMNS = (
    "id", "serial", "officer", "unit", "start", "end", "deadline", "deadline_met_at",
    "deadline_status", "case_number", "category", "tagged",
)  # fmt: skip
UNIT_COLUMNS = (
    "unit", "unit_name", "active_officers", "recorders_counted", "ratio", "required",
    "compliant", "not_counted",
)  # fmt: skip
RECORDER_COLUMNS = ("serial", "vendor", "officer", "unit", "last_seen", "limit")
CASE_COLUMNS = (
    "case_number", "concluded_on", "due_on", "case_status", "recordings_n", "not_archived",
)  # fmt: skip


def _summary_rows(doc: dict[str, Any], lang: str) -> Rows:
    d, u = doc["deadlines"], doc["untagged"]
    rows = [[t(lang, "total"), d["total"]]]
    rows += [[t(lang, s), d[s]] for s in STATUSES]
    rows += [
        [t(lang, "untagged"), u["count"]],
        [t(lang, "untagged_overdue", hours=u["older_than_hours"]), u["overdue"]],
        [t(lang, "not_docked_count"), len(doc["recorders_not_docked"])],
        [t(lang, "cases_due"), doc["case_files"]["due"]],
        [t(lang, "cases_overdue"), doc["case_files"]["overdue"]],
    ]
    return [t(lang, "metric"), t(lang, "value")], rows


def _recording_rows(doc: dict[str, Any], lang: str) -> Rows:
    rows = []
    for r in doc["recordings"]:
        row = dict(r)
        row["deadline_status"] = t(lang, r["deadline_status"] or "no_deadline")
        row["tagged"] = _yes(lang, r["tagged"])
        rows.append([row[c] for c in RECORDING_COLUMNS])
    return [t(lang, c) for c in RECORDING_COLUMNS], rows


def _unit_rows(doc: dict[str, Any], lang: str) -> Rows:
    rows = []
    for u in doc["units"]:
        row = dict(u)
        row["compliant"] = _yes(lang, u["compliant"])
        row["not_counted"] = "; ".join(
            f"{n['serial']} ({reason(lang, n['reason'])})" for n in u["not_counted"]
        )
        rows.append([row[c] for c in UNIT_COLUMNS])
    return [t(lang, c) for c in UNIT_COLUMNS], rows


def _recorder_rows(doc: dict[str, Any], lang: str) -> Rows:
    rows = [[d[c] for c in RECORDER_COLUMNS] for d in doc["recorders_not_docked"]]
    return [t(lang, c) for c in RECORDER_COLUMNS], rows


def _case_rows(doc: dict[str, Any], lang: str) -> Rows:
    rows = [
        [c["case_number"], c["concluded_on"], c["due_on"], t(lang, "case_" + c["status"]),
         c["recordings"], c["not_archived"]]
        for c in doc["case_files"]["cases"]
    ]  # fmt: skip
    return [t(lang, c) for c in CASE_COLUMNS], rows


_SECTION_ROWS = {
    "summary": _summary_rows,
    "recordings": _recording_rows,
    "units": _unit_rows,
    "recorders": _recorder_rows,
    "cases": _case_rows,
}


def section_rows(doc: dict[str, Any], lang: str, section: str) -> Rows:
    """(headings, rows) of one report section, in `lang`."""
    return _SECTION_ROWS[section](doc, lang)


def _title(doc: dict[str, Any], lang: str, section: str) -> str:
    if section == "summary":
        return t(lang, "summary")
    if section == "recordings":
        return t(lang, "recordings")
    if section == "units":
        ratio = max((u["ratio"] for u in doc["units"]), default=5) if doc["units"] else 5
        return t(lang, "units", ratio=ratio)
    if section == "cases":
        return t(lang, "cases", days=doc["case_files"]["days"])
    return t(lang, "recorders", days=doc["not_docked_working_days"])


def write_csv(doc: dict[str, Any], lang: str, section: str = "all") -> bytes:
    """The report as CSV bytes, UTF-8 with a BOM so Excel and WPS detect the encoding."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    sections = SECTIONS if section == "all" else (section,)
    for i, name in enumerate(sections):
        heads, rows = section_rows(doc, lang, name)
        if section == "all":
            if i:
                w.writerow([])
            w.writerow([_title(doc, lang, name)])
        w.writerow(heads)
        w.writerows([["" if v is None else v for v in row] for row in rows])
    return buf.getvalue().encode("utf-8-sig")


def _attention(doc: dict[str, Any], lang: str) -> Rows:
    """On screen only the recordings needing attention, in a terminal's width; the JSON and
    CSV carry every recording with every column."""
    cols = ["ref", "serial", "officer", "end", "deadline", "deadline_status", "case_number"]
    rows = []
    for r in doc["recordings"]:
        if r["deadline_status"] in ("at_risk", "missed", "met_late") or r["untagged_overdue"]:
            rows.append(
                [
                    # As in `status`: a 12-digit SHA-256 prefix is a handle every command takes.
                    r["sha256"][:12] if r["sha256"] else r["id"],
                    r["serial"],
                    r["officer"],
                    (r["end"] or "")[:16].replace("T", " "),
                    (r["deadline"] or "")[:10],
                    t(lang, r["deadline_status"] or "no_deadline"),
                    r["case_number"] or "-",
                ]
            )
    return [t(lang, c) for c in cols], rows


def print_tables(doc: dict[str, Any], lang: str, console: Console | None = None) -> None:
    console = console or Console()
    p = doc["period"]
    scope = (
        t(lang, "period", start=p["from"] or "…", end=p["to"] or "…", tz=doc["timezone"])
        if p["from"] or p["to"]
        else t(lang, "all_time", tz=doc["timezone"])
    )
    if doc["unit"]:
        scope += ", " + t(lang, "unit_filter", unit=doc["unit"])
    console.print(f"[bold]{t(lang, 'title', station=doc['station'])}[/]  {scope}")
    console.print(t(lang, "generated", at=doc["generated_at"]))
    for name in SECTIONS:
        heads, rows = section_rows(doc, lang, name)
        if name == "recordings":
            heads, rows = _attention(doc, lang)
            title = t(lang, "problem_recordings")
        else:
            title = _title(doc, lang, name)
        if name == "units" and not doc["roster_configured"]:
            console.print(f"[yellow]{t(lang, 'no_roster')}[/]")
            continue
        table = Table(title=title, title_justify="left")
        for h in heads:
            table.add_column(h)
        for row in rows:
            table.add_row(*("-" if v is None else str(v) for v in row))
        if not rows:
            table.add_row(t(lang, "none"), *[""] * (len(heads) - 1))
        console.print(table)
    for problem in doc["problems"]:
        console.print(f"[red]{t(lang, 'problems')}:[/] {problem}")
