"""The `tag` and `report` commands (parsers and handlers), kept out of agent.cli.main for size."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.cli.args import count, iso_day, iso_since
from agent.config.compliance import METADATA_KEYS
from agent.core import jsonout
from agent.core.errors import AgentError, TagError

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]

# Convenience flags for the metadata fields; --set KEY=VALUE reaches every field.
FIELD_FLAGS = {
    "case_number": "案件编号 (format: tagging.case_number_pattern)",
    "capture_time": "采集时间, ISO-8601; without offset station time; not in the future",
    "capture_place": "采集地点",
    "collector": "采集人: an officer id (checked against the roster when one is configured)",
    "proves": "证明对象: what the recording proves",
    "officer_id": "警员编号 of the officer wearing the recorder",
    "unit_id": "单位 id",
    "category": "category; picks the deadline rule (compliance.rules)",
    "importance": "normal, important or critical (一般/重要/重大)",
    "confidentiality": "密级: none, personal_privacy, commercial_secret or state_secret",
    "party": "执法对象: the person or company concerned (kept in the ledger only)",
    "stage": "执法环节: site_inspection, evidence_collection, service_of_documents, hearing, "
    "compulsory_measure, execution or other",
}


def parse_when(text: str, tz: str, *, end: bool = False) -> datetime:
    """ISO date or date-time; naive = station time. A bare date as an end means the day's end."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            when = datetime.combine(day + timedelta(days=1) if end else day, time(), ZoneInfo(tz))
            return when
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise AgentError(
            f"{text!r} is not an ISO date or time (e.g. 2026-09-30 or 2026-09-30T08:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(tz))


def parse_day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise AgentError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _context(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from agent.config import loader as config_mod
    from agent.station.context import Context

    return Context(config_mod.load(args.config))


# --- tag --------------------------------------------------------------------------------------


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in FIELD_FLAGS:
        value = getattr(args, key)
        if value is not None:
            fields[key] = value
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise TagError(f"--set {item!r}: expected KEY=VALUE, e.g. --set 证明对象=现场检查")
        fields[key.strip()] = value
    for key in args.clear or []:
        fields[key.strip()] = None
    return fields


def _refs(args: argparse.Namespace, ctx: Any) -> list[str]:
    from agent.tagging.apply import select_recordings

    refs = list(args.refs)
    if args.refs_file:
        fh = sys.stdin if args.refs_file == "-" else open(args.refs_file, encoding="utf-8")  # noqa: SIM115
        with fh:
            refs += [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
    if args.serial:
        tz = ctx.cfg.station.timezone
        lo = parse_when(args.start_from, tz) if args.start_from else None
        hi = parse_when(args.start_to, tz, end=True) if args.start_to else None
        picked = select_recordings(ctx, args.serial, lo, hi)
        if not picked:
            raise TagError(
                f"recorder {args.serial} has no recordings starting in the range "
                f"{args.start_from or '…'} to {args.start_to or '…'}"
            )
        refs += picked
    elif args.start_from or args.start_to:
        raise TagError("--from/--to select a recorder's clips: give --serial too")
    return refs


def _request(args: argparse.Namespace, tz: str) -> dict[str, Any]:
    """The tag request for the gate; recorder/time selection is resolved by the daemon."""
    refs = list(args.refs)
    if args.refs_file:
        fh = sys.stdin if args.refs_file == "-" else open(args.refs_file, encoding="utf-8")  # noqa: SIM115
        with fh:
            refs += [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
    if (args.start_from or args.start_to) and not args.serial:
        raise TagError("--from/--to select a recorder's clips: give --serial too")
    lo = parse_when(args.start_from, tz) if args.start_from else None
    hi = parse_when(args.start_to, tz, end=True) if args.start_to else None
    return {
        "refs": refs,
        "serial": args.serial,
        "from": lo.isoformat() if lo else None,
        "to": hi.isoformat() if hi else None,
        "fields": _fields(args),
        "reason": args.reason,
        "operator": args.operator,
    }


def cmd_tag(args: argparse.Namespace) -> int:
    if args.show or args.dry_run:
        return _tag_read(args)  # reads: the data dir's owner and root, directly
    from agent.cli import client
    from agent.config import loader as config_mod

    cfg = config_mod.load(args.config)
    results = client.call(cfg, "tag", _request(args, cfg.station.timezone))
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return 0
    for r in results:
        what = ", ".join(r["changed"]) if r["changed"] else "no change"
        due = f"; deadline now {r['deadline']}" if r["deadline_recomputed"] else ""
        print(f"{r['recording_id']}: metadata version {r['version']} ({what}){due}")
    return 0


def _tag_read(args: argparse.Namespace) -> int:
    from agent.tagging import apply as tagging

    ctx = _context(args)
    if args.show:
        doc = tagging.show(ctx, args.show)
        if args.json:
            print(json.dumps(doc, ensure_ascii=False, indent=2))
        else:
            _print_show(doc)
        return 0
    print("\n".join(_refs(args, ctx)))
    return 0


def _print_show(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from agent.tagging.context_fields import display
    from agent.tagging.metadata import LABELS

    console = Console()
    console.print(
        f"[bold]{doc['id']}[/] metadata version {doc['metadata_version']}, "
        f"deadline {doc['deadline'] or '-'}, stored {doc['deadline_met_at'] or '-'}"
    )
    table = Table()
    table.add_column("field")
    for v in doc["metadata_history"]:
        table.add_column(f"v{v['version']}\n{v['at'][:19]}\n{v['actor']} ({v['origin']})")
    for key in METADATA_KEYS:
        zh, en = LABELS[key]
        table.add_row(
            f"{en} {zh}", *[display(key, v["fields"][key]) for v in doc["metadata_history"]]
        )
    table.add_row("reason", *[v["reason"] or "-" for v in doc["metadata_history"]])
    console.print(table)


# --- report -----------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from agent.compliance import report
    from agent.compliance.report_text import default_lang
    from agent.core.wiretime import localize

    ctx = _context(args)
    lang = args.lang or default_lang()
    doc = report.build(
        ctx,
        start=parse_day(args.start_from),
        end=parse_day(args.start_to),
        unit=args.unit,
        limit=args.limit or None,
        everything=args.all_recordings,
    )
    doc = localize(doc, ctx.cfg.station.timezone)  # one clock: the station's (issue 14)
    for problem in doc["problems"]:
        print(f"evidence-agent: warning: {problem}", file=sys.stderr)
    if args.json:
        data = (jsonout.dumps(doc) + "\n").encode("utf-8")
    elif args.csv:
        data = report.write_csv(doc, lang, args.section)
    else:
        report.print_tables(doc, lang)
        return 0
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


# --- parsers ----------------------------------------------------------------------------------


def add_parsers(add: Add) -> None:
    sp = add("tag", cmd_tag, "set case metadata on recordings (each change is a new version)")
    sp.add_argument("refs", nargs="*", metavar="REF", help="recording id or SHA-256 prefix")
    sp.add_argument(
        "--refs-file", metavar="FILE", help="file with one REF per line ('-': standard input)"
    )
    sp.add_argument("--serial", help="select a recorder's recordings (with --from/--to)")
    sp.add_argument(
        "--from",
        dest="start_from",
        metavar="TIME",
        type=iso_since,
        help="recordings starting at or after (ISO)",
    )
    sp.add_argument(
        "--to",
        dest="start_to",
        metavar="TIME",
        type=iso_since,
        help="... and before (ISO; a date: its end)",
    )
    for key, help_ in FIELD_FLAGS.items():
        sp.add_argument("--" + key.replace("_", "-"), dest=key, metavar="VALUE", help=help_)
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="any field, repeatable")
    sp.add_argument("--clear", action="append", metavar="KEY", help="clear a field, repeatable")
    sp.add_argument(
        "--operator", metavar="ID", help="optional; must be you (you are who you log in as)"
    )
    sp.add_argument(
        "--reason", metavar="TEXT", help="why; required when a value that was set changes"
    )
    sp.add_argument("--dry-run", action="store_true", help="only list the selected recordings")
    sp.add_argument("--show", metavar="REF", help="show a recording's metadata and history")
    sp.add_argument("--json", action="store_true")

    sp = add("report", cmd_report, "compliance report: deadlines, untagged, ratio, not docked")
    fmt = sp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="stable JSON (English keys)")
    fmt.add_argument("--csv", action="store_true", help="CSV, UTF-8 with BOM (Excel, WPS)")
    sp.add_argument("--lang", choices=("zh", "en"), help="headings (default: from the locale)")
    sp.add_argument(
        "--from",
        dest="start_from",
        metavar="DATE",
        type=iso_day,
        help="first day (YYYY-MM-DD, station time)",
    )
    sp.add_argument(
        "--to", dest="start_to", metavar="DATE", type=iso_day, help="last day, inclusive"
    )
    sp.add_argument("--unit", metavar="U", help="only this unit")
    sp.add_argument(
        "--limit",
        type=count,
        default=1000,  # agent.compliance.report.LIMIT
        metavar="N",
        help="list at most N recordings (default %(default)s; 0: no bound); counts cover all",
    )
    sp.add_argument(
        "--all-recordings",
        action="store_true",
        help="list every recording of the period, not only those needing attention",
    )
    sp.add_argument(
        "--section",
        choices=("all", "summary", "recordings", "units", "recorders", "cases"),
        default="all",
        help="with --csv: one table only (default: all, one after the other)",
    )
    sp.add_argument("--output", "-o", help="write to this file instead of standard output")
    from agent.cli.casefile import add_parsers as add_case

    add_case(add)  # `case conclude|show`: the case file's due date comes from it
