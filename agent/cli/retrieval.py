"""`export request|approve|refuse|run|return|list`: supervised retrieval (调阅) at the CLI.

Every step goes through the daemon's gate (agent.cli.client); `export run` writes the files as
the calling operator, like the one-step `export ID... --to DIR`. The old one-step form stays
where no approval is needed (agent.access.retrieval says when).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.audit import direct_reader
from agent.config import loader as config_mod
from agent.core.errors import AgentError

STEPS = ("request", "approve", "refuse", "run", "return", "list")
USAGE = (
    "evidence-agent export request ID... --reason TEXT | approve REQ [--reason TEXT] | "
    "refuse REQ --reason TEXT | run REQ --to DIR | return REQ [--note TEXT] | list [--open]"
)


class UsageError(AgentError):
    exit_code = 64  # EX_USAGE


def _one(words: list[str], step: str) -> str:
    if len(words) != 1:
        raise UsageError(f"export {step} takes one request id; usage: {USAGE}")
    return words[0]


def _print_request(doc: dict[str, Any]) -> None:
    print(
        f"{doc['id']}  {doc['state']:<9}  requested by {doc['requester']} at "
        f"{doc['requested_at']}  {len(doc['recordings'])} recording(s)"
        f"{'  CONFIDENTIAL' if doc['confidential'] else ''}  reason: {doc['reason']}"
    )
    if doc.get("decided_by"):
        verdict = "refused" if doc["state"] == "refused" else "approved"
        why = doc["decision_reason"] or ""
        print(f"    {verdict} by {doc['decided_by']} at {doc['decided_at']}: {why}")
    if doc.get("executed_at"):
        print(f"    executed at {doc['executed_at']} into {doc['export_to']}")
    if doc.get("returned_at"):
        print(f"    returned to {doc['returned_by']} at {doc['returned_at']}: {doc['return_note']}")


def _params(args: argparse.Namespace, words: list[str]) -> tuple[str, dict[str, Any]]:
    step = words[0]
    rest = words[1:]
    base: dict[str, Any] = {"operator": args.operator}
    if step == "request":
        if not rest or not args.reason:
            raise UsageError(f"export request needs recordings and --reason; usage: {USAGE}")
        return "export.request", {**base, "refs": rest, "reason": args.reason}
    if step in ("approve", "refuse"):
        if step == "refuse" and not args.reason:
            raise UsageError("export refuse needs --reason (kept in the custody log)")
        return f"export.{step}", {**base, "request": _one(rest, step), "reason": args.reason}
    if step == "return":
        return "export.return", {**base, "request": _one(rest, step), "note": args.note}
    if rest:
        raise UsageError(f"export list takes no arguments; usage: {USAGE}")
    return "export.list", {**base, "open": bool(args.open)}


def _run(args: argparse.Namespace, req: str) -> int:
    if not args.to:
        raise UsageError("export run needs --to DIR (the directory to write the copies into)")
    from agent.cli import client

    params = {"request": req, "operator": args.operator}
    result = client.export(config_mod.load(args.config), params, Path(args.to))
    return print_export(args, result)


def print_export(args: argparse.Namespace, result: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for e in result["exported"]:
            print(f"exported {e['recording_id']} -> {Path(args.to) / e['file']} ({e['source']})")
        for f in result["failed"]:
            print(f"FAILED {f['id']}: {f['reason']}", file=sys.stderr)
        if result.get("manifest"):
            print(f"manifest {result['manifest']}")
    return 1 if result["failed"] else 0


def _borrow_register(cfg: Any, open_only: bool) -> list[dict[str, Any]]:
    """The borrow register read from the ledger by root or the data dir's owner."""
    from agent.access.retrieval import borrow_register
    from agent.station.context import Context

    ctx = Context(cfg)
    try:
        return borrow_register(ctx.ledger.connect(), cfg.station.timezone, open_only)
    finally:
        ctx.close()


def run(args: argparse.Namespace) -> int:
    from agent.cli import client

    words = list(args.ids)
    if words[0] == "run":
        return _run(args, _one(words[1:], "run"))
    verb, params = _params(args, words)
    cfg = config_mod.load(args.config)
    result: Any
    if verb == "export.list" and direct_reader(cfg):
        result = _borrow_register(cfg, bool(args.open))  # like `audit`: no daemon needed
    else:
        result = client.call(cfg, verb, params)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    for doc in result if isinstance(result, list) else [result]:
        _print_request(doc)
    if verb == "export.request":
        req = result["id"]
        print(
            f"next: a supervisor runs `evidence-agent export approve {req}`; "
            f"then you run `evidence-agent export run {req} --to DIR`",
            file=sys.stderr,
        )
    return 0


def add_parser(add: Any, handler: Any) -> None:
    sp = add("export", handler, "supervised retrieval (调阅): request, approve, run, return")
    sp.add_argument("ids", nargs="+", metavar="ID|STEP", help="request ID... | approve REQ |"
                    " refuse REQ | run REQ | return REQ | list; or ID... (one step, where"
                    " no approval is needed; see docs/access.md)")  # fmt: skip
    sp.add_argument("--to", help="directory to write the copies into (run, one step)")
    sp.add_argument("--reason", help="why (request, refuse, approve, one step; logged)")
    sp.add_argument("--note", help="what came back (return; logged)")
    sp.add_argument("--open", action="store_true", help="list: only open retrievals")
    sp.add_argument("--operator", help="optional; must be you (you are who you log in as)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
