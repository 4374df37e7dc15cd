"""`evidence-agent audit`: the custody log as sentences people can read (agent.actions.audit).

Root and the data dir's owner read the ledger directly (recorded as their uid); everyone else
asks the daemon's gate, which lets supervisors (and officers, for their own recordings) read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.cli.compliance import parse_when

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def direct_reader(cfg: Any) -> bool:
    """Root and the data dir's owner read the ledger directly; everyone else asks the gate."""
    try:
        owner = cfg.station.data_dir.stat().st_uid
    except OSError:
        return False
    return os.geteuid() in (0, owner)


def cmd_audit(args: argparse.Namespace) -> int:
    from agent.actions import audit
    from agent.config import loader as config_mod

    cfg = config_mod.load(args.config)
    tz = cfg.station.timezone
    params = {
        "recording": args.recording,
        "by_operator": args.operator_filter,
        "since": parse_when(args.since, tz).isoformat() if args.since else None,
        "until": parse_when(args.until, tz, end=True).isoformat() if args.until else None,
        "kind": args.kind,
        "limit": args.limit,
    }
    if direct_reader(cfg):
        from agent.station.context import Context

        ctx = Context(cfg)
        q = audit.Query.from_params(params)
        audit.resolve(ctx, q)
        doc = audit.collect(ctx, ctx.ledger.connect(), q)
        audit.record_read(ctx, f"uid:{os.geteuid()}", q, "direct")
    else:
        from agent.cli import client

        doc = client.call(cfg, "audit", params)
    return _output(doc, args)


def _output(doc: dict[str, Any], args: argparse.Namespace) -> int:
    from agent.actions import audit

    lang = args.lang or ("zh" if os.environ.get("LANG", "").startswith("zh") else "en")
    if args.html:
        from agent.actions.audit_html import render

        if not doc.get("recording"):
            print("evidence-agent: --html needs --recording ID", file=sys.stderr)
            return 64
        Path(args.html).write_text(render(doc, lang), encoding="utf-8")
        print(f"audit report of {doc['recording']['id']}: {args.html}")
        return 0
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    elif args.csv:
        sys.stdout.flush()
        sys.stdout.buffer.write(audit.to_csv(doc, lang))
        sys.stdout.buffer.flush()
    else:
        audit.print_table(doc, lang)
    return 0


def add_parser(add: Add) -> None:
    sp = add("audit", cmd_audit, "who did what: the custody log as readable sentences")
    sp.add_argument("--recording", metavar="ID", help="one recording (id or SHA-256 prefix)")
    sp.add_argument(
        "--operator", dest="operator_filter", metavar="ID", help="what this operator did"
    )
    sp.add_argument("--since", metavar="TIME", help="from (ISO date/time; naive = station time)")
    sp.add_argument("--until", metavar="TIME", help="before (a date: its end)")
    sp.add_argument("--kind", metavar="CODE", help="event code, or a prefix like recording.")
    sp.add_argument("--limit", type=int, default=1000)
    sp.add_argument("--lang", choices=("zh", "en"))
    fmt = sp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true", help="CSV, UTF-8 with BOM")
    fmt.add_argument("--html", metavar="FILE", help="printable report (with --recording)")
