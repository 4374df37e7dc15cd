"""The `evidence-agent` command line (the contract: docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from agent import __version__
from agent.cli import args as cli_args
from agent.cli.station import add_station_commands
from agent.config import envcheck
from agent.config import loader as config_mod
from agent.core.errors import AgentError, ConfigError
from agent.ledger.recordings import STATES
from agent.station import locate

logger = logging.getLogger("agent")


def _setup_logging(level: str) -> None:
    from agent.cli import logsetup

    logsetup.setup(level)


def _context(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from agent.station.context import Context

    return Context(config_mod.load(args.config))


# --- commands ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from agent.daemon.main import Daemon
    from agent.ledger import paths as stationpaths
    from agent.station.context import Context
    from agent.station.ownership import DaemonLock, require_owner

    cfg = config_mod.load(args.config)
    require_owner(cfg.station.data_dir, "run")  # no root-owned files for the service user
    lock = DaemonLock(cfg.locks_dir, cfg.station.data_dir)
    lock.acquire()  # one daemon per data dir, held until this process ends
    try:
        ctx = Context(cfg)
        # Before anything creates a directory: a root without its marker is refused, not filled.
        stationpaths.check_roots(ctx.cfg, ctx.ledger.connect())
        return Daemon(ctx).run_forever()
    finally:
        lock.release()


def cmd_ingest(args: argparse.Namespace) -> int:
    from agent.actions.ingest_dir import ingest_dir
    from agent.station.context import Context
    from agent.station.ownership import require_owner

    cfg = config_mod.load(args.config)
    require_owner(cfg.station.data_dir, "ingest")  # before anything touches the data dir
    return ingest_dir(Context(cfg), Path(args.dir), as_json=args.json, max_wait=args.max_wait)


def cmd_status(args: argparse.Namespace) -> int:
    from agent.actions import status
    from agent.core.wiretime import localize

    ctx = _context(args)
    filters = {
        "limit": args.limit,
        "state": args.state,
        "since": args.since,
        "recorder": args.recorder,
        "before": args.before,
    }
    if args.json and args.limit == 0:
        status.stream(ctx, sys.stdout, history=args.history, **filters)
        return 0
    doc = status.document(ctx, history=args.history, **filters)
    doc = localize(doc, ctx.cfg.station.timezone)  # one clock: the station's (issue 14)
    if args.json:
        print(status.to_json(doc))
    else:
        from agent.actions.views import print_status

        print_status(doc)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from agent.actions import verify
    from agent.core.wiretime import localize

    ctx = _context(args)
    pubkey = Path(args.pubkey) if args.pubkey else None
    if args.json or not sys.stderr.isatty():
        report = verify.run(ctx, pubkey=pubkey, incremental=args.incremental)
    else:
        from rich.console import Console
        from rich.progress import Progress

        from agent.actions.verify_stream import count_hashed

        total = count_hashed(ctx.ledger.connect())
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("re-hashing copies", total=total)
            report = verify.run(ctx, lambda _rid: bar.advance(task), pubkey, args.incremental)
    if args.json:
        doc = localize(report.to_dict(), ctx.cfg.station.timezone)  # one clock (issue 14)
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for p in report.problems:
            print(f"FAIL {p.kind} {p.subject}: {p.message}")
        for name in report.orphans:
            print(f"NOTE orphan {name}: moved aside by recovery; no ledger row names it")
        print("\n".join(verify.notes(report)))
        print(
            f"{'OK' if report.ok else 'FAILED'}: {report.recordings_checked} copies "
            f"({report.bytes_checked} bytes) re-hashed, {report.custody_events} custody events, "
            f"{report.checkpoints} signed checkpoints, {report.anchors_checked} archived "
            f"anchors; {len(report.problems)} problem(s)"
        )
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from agent.actions.safeexport import ExportInterrupted
    from agent.cli import client, retrieval

    if args.ids[0] in retrieval.STEPS:
        try:
            return retrieval.run(args)
        except ExportInterrupted as exc:
            print(f"evidence-agent: {exc}; recorded as export.aborted", file=sys.stderr)
            return 128 + exc.signum
    if not args.to or not args.reason:
        raise retrieval.UsageError(f"export ID... needs --to and --reason; or: {retrieval.USAGE}")
    params = {"refs": args.ids, "reason": args.reason, "operator": args.operator}
    try:
        result = client.export(config_mod.load(args.config), params, Path(args.to))
    except ExportInterrupted as exc:
        print(f"evidence-agent: {exc}; recorded as export.aborted", file=sys.stderr)
        return 128 + exc.signum
    return retrieval.print_export(args, result)


def cmd_interview(args: argparse.Namespace) -> int:
    from agent.cli.interview import run

    return run(args, _context)


def cmd_decide(args: argparse.Namespace) -> int:
    from agent.cli import client

    params = {"refs": args.ids, "reason": args.reason, "operator": args.operator}
    results = client.call(config_mod.load(args.config), args.command, params)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        for r in results:
            print(("ok    " if r["ok"] else "FAIL  ") + r["message"])
        if args.command == "accept" and any(r["ok"] for r in results):
            print(
                "note: later recordings of these recorders are quarantined too until they are "
                "added to the inventory file (inventory.file)"
            )
    return 0 if all(r["ok"] for r in results) else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.cli import run_simulator

    return run_simulator(args)


def _nonnegative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0 or more)")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evidence-agent", description=__doc__)
    p.add_argument(
        "--config",
        "-c",
        help="config TOML (default: $EVIDENCE_AGENT_CONFIG, else "
        "/etc/evidence-agent/agent.toml if it exists, else embedded defaults)",
    )
    p.add_argument(
        "--log-level",
        type=cli_args.log_level,
        choices=cli_args.LOG_LEVELS,
        default=cli_args.default_log_level(),
        help="default: $EVIDENCE_AGENT_LOG_LEVEL, else info",
    )
    p.add_argument("--version", action="version", version=f"evidence-agent {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=fn)
        return sp

    add("run", cmd_run, "run the daemon in the foreground (systemd Type=notify)")
    sp = add("ingest", cmd_ingest, "one-shot ingest of a mounted recorder volume (never erases)")
    sp.add_argument("dir")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds to wait for files still being written (default 60)",
    )
    sp = add("status", cmd_status, "station, recorders, queue and recordings")
    sp.add_argument("--json", action="store_true")
    sp.add_argument(
        "--limit",
        type=_nonnegative,
        default=100,
        help="most recent recordings to list (default 100; 0 = all, streamed with --json)",
    )
    sp.add_argument("--state", default=None, choices=STATES, help="only recordings in STATE")
    sp.add_argument(
        "--since",
        default=None,
        type=cli_args.iso_since,
        help="ISO date/time: recordings starting after",
    )
    sp.add_argument("--recorder", default=None, metavar="SERIAL", help="only this recorder's")
    sp.add_argument(
        "--before",
        default=None,
        metavar="ID",
        help="next page: recordings older than this one (next_before of the previous page)",
    )
    sp.add_argument(
        "--history",
        action="store_true",
        help="with --json: add metadata_history (every metadata version) to each recording",
    )
    for verb, what in (
        ("accept", "accept quarantined recordings: they move on to spooled and the archive"),
        ("reject", "reject quarantined recordings: they stay held, marked rejected"),
    ):
        sp = add(verb, cmd_decide, what)
        sp.add_argument("ids", nargs="+", metavar="ID", help="recording id or SHA-256 prefix")
        sp.add_argument("--operator", help="optional; must be you (you are who you log in as)")
        sp.add_argument("--reason", required=True, help="why (kept in the custody log)")
        sp.add_argument("--json", action="store_true")
    sp = add("verify", cmd_verify, "re-hash copies, check custody chain and signatures")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--pubkey", metavar="FILE", help="station key pinned outside the data"
                    " dir (else custody.pubkey_file/_fingerprint; none: UNPINNED)")  # fmt: skip
    sp.add_argument(
        "--incremental", action="store_true", help="only what changed since the newest anchor"
    )
    from agent.cli.retrieval import add_parser as add_export

    add_export(add, cmd_export)
    add_station_commands(add)
    sp = add("interview", cmd_interview, "interview-room sessions: start, stop, mark, report")
    from agent.cli.interview import add_arguments as add_interview

    add_interview(sp)
    from agent.cli.compliance import add_parsers as add_compliance

    add_compliance(add)
    from agent.cli.audit import add_parser as add_audit

    add_audit(add)
    from agent.cli.console import add_parsers as add_console

    add_console(add)
    sp = add("simulate", cmd_simulate, "run hardware simulators")
    from simulators.cli import add_arguments

    add_arguments(sp)
    locate.repeat_global_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cli_args.check_log_level(parser, args.log_level)
    _setup_logging(args.log_level)
    for warning in envcheck.stray_variables(os.environ):
        logger.warning("%s", warning)
    args.config = locate.choose_config(args.config, args.command)
    try:
        if locate.needs_ledger(args):
            cfg = config_mod.load(args.config)
            locate.require_ledger(cfg.ledger_path, cfg.station.data_dir, args.config)
        return int(args.func(args))
    except ConfigError as exc:
        print(f"evidence-agent: {exc}", file=sys.stderr)
        return exc.exit_code
    except AgentError as exc:
        print(f"evidence-agent: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
