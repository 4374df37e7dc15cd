"""`evidence-agent interview start|stop|mark|report|list` (docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from agent.core.wiretime import localize
from agent.station.context import Context

ContextFn = Callable[[argparse.Namespace], Context]


def add_arguments(sp: argparse.ArgumentParser) -> None:
    verbs = sp.add_subparsers(dest="verb", required=True, metavar="VERB")
    st = verbs.add_parser("start", help="start recording a session (waits until it records)")
    st.add_argument("--case", help="case number (案件编号)")
    st.add_argument(
        "--interviewer", action="append", default=[], help="officer id (repeatable; 采集人)"
    )
    st.add_argument("--subject", help="the person interviewed")
    st.add_argument("--proves", help="what the recording proves (证明对象)")
    st.add_argument("--note", help="free text kept with the session")
    st.add_argument("--operator", help="optional; must be you (you are who you log in as)")
    st.add_argument("--no-wait", action="store_true", help="return once requested")
    st.add_argument("--json", action="store_true")
    sp_ = verbs.add_parser("stop", help="stop the session (waits until it is closed)")
    sp_.add_argument("session", nargs="?", help="session id or prefix (default: the active one)")
    sp_.add_argument("--operator")
    sp_.add_argument("--no-wait", action="store_true")
    sp_.add_argument("--json", action="store_true")
    mk = verbs.add_parser("mark", help="put a mark into the recording session")
    mk.add_argument("--note")
    mk.add_argument("--operator")
    mk.add_argument("--json", action="store_true")
    rp = verbs.add_parser("report", help="segments, hashes, coverage and gaps of a session")
    rp.add_argument("session", help="session id, a prefix of 8+ characters, or `last`")
    rp.add_argument("--json", action="store_true")
    rp.add_argument("--no-verify", action="store_true", help="do not re-hash the segments")
    ls = verbs.add_parser("list", help="recent sessions")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, context: ContextFn) -> int:
    if args.verb in ("start", "stop", "mark"):
        return _gated(args)  # through the daemon's gate: no ledger access from here
    ctx = context(args)
    handler = {"report": _report, "list": _list}
    return handler[args.verb](ctx, args)


def _gated(args: argparse.Namespace) -> int:
    from agent.cli import client
    from agent.config import loader as config_mod

    cfg = config_mod.load(args.config)
    if args.verb == "start":
        params: dict[str, Any] = {
            "case_number": args.case,
            "interviewers": args.interviewer,
            "subject": args.subject,
            "proves": args.proves,
            "notes": args.note,
        }
    elif args.verb == "stop":
        params = {"session": args.session}
    else:
        params = {"note": args.note}
    params.update(operator=args.operator, wait=not getattr(args, "no_wait", False))
    result = client.call(cfg, f"interview.{args.verb}", params)
    return {"start": _start, "stop": _stop, "mark": _mark}[args.verb](result, args)


def _print(result: dict[str, Any], as_json: bool, ok_text: str) -> int:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    elif result.get("ok"):
        print(ok_text.format(**{k: ("-" if v is None else v) for k, v in result.items()}))
    if not result.get("ok"):
        if not as_json:
            print(f"evidence-agent interview: {result.get('error')}", file=sys.stderr)
        return 1
    return 0


def _start(result: dict[str, Any], args: argparse.Namespace) -> int:
    text = "session {session} {state} (room {room}, case {case_number}) since {started_at}"
    if args.no_wait:
        text = "session {session} requested"
    return _print(result, args.json, text)


def _stop(result: dict[str, Any], args: argparse.Namespace) -> int:
    if result.get("coverage") is not None:
        result["coverage_pct"] = round(100 * result["coverage"], 2)
    text = "session {session} {state}: {started_at} -> {ended_at}, coverage {coverage_pct} %"
    if args.no_wait:
        text = "session {session}: stop requested"
    return _print(result, args.json, text)


def _mark(result: dict[str, Any], args: argparse.Namespace) -> int:
    return _print(result, args.json, "session {session}: mark at {at}")


def _report(ctx: Context, args: argparse.Namespace) -> int:
    from agent.interview import report

    doc = report.build(ctx, args.session, verify=not args.no_verify)
    shown = localize(doc, ctx.cfg.station.timezone)  # one clock: the station's (issue 14)
    if args.json:
        print(report.to_json(shown))
    else:
        report.render(shown)
    return 1 if doc["hashes_verified"] is False else 0


def _list(ctx: Context, args: argparse.Namespace) -> int:
    rows = ctx.ledger.query(
        "SELECT id, state, case_number, requested_at, started_at, ended_at, coverage"
        " FROM interview_sessions ORDER BY requested_at DESC LIMIT ?",
        (args.limit,),
    )
    items = [localize(dict(r), ctx.cfg.station.timezone) for r in rows]
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    for r in items:
        cov = "-" if r["coverage"] is None else f"{100 * r['coverage']:.1f} %"
        print(
            f"{r['id']}  {r['state']:<9} {r['started_at'] or r['requested_at']}  "
            f"case {r['case_number'] or '-'}  coverage {cov}"
        )
    return 0
