"""The `evidence-agent` command line (see DESIGN.md "CLI" for the contract)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from agent import __version__
from agent.config import loader as config_mod
from agent.core.errors import AgentError, ConfigError
from agent.ledger.recordings import STATES

logger = logging.getLogger("agent")


def _setup_logging(level: str) -> None:
    # Under systemd the journal stamps time and unit itself; elsewhere show the time.
    fmt = (
        "%(levelname)s %(name)s: %(message)s"
        if os.environ.get("JOURNAL_STREAM")
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), format=fmt, stream=sys.stderr
    )
    from agent.logthrottle import install

    install()


def _context(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from agent.station.context import Context

    return Context(config_mod.load(args.config))


# --- commands ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from agent.daemon.main import Daemon

    return Daemon(_context(args)).run_forever()


def cmd_ingest(args: argparse.Namespace) -> int:
    from agent.actions.ingest_dir import ingest_dir

    return ingest_dir(_context(args), Path(args.dir), as_json=args.json, max_wait=args.max_wait)


def cmd_status(args: argparse.Namespace) -> int:
    from agent.actions import status

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
    if args.json:
        print(status.to_json(doc))
    else:
        from agent.actions.views import print_status

        print_status(doc)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from agent.actions import verify

    ctx = _context(args)
    if args.json or not sys.stderr.isatty():
        report = verify.run(ctx)
    else:
        from rich.progress import Progress

        total = ctx.ledger.one("SELECT COUNT(*) FROM recordings WHERE sha256 IS NOT NULL")
        with Progress(transient=True) as bar:
            task = bar.add_task("re-hashing copies", total=total[0] if total else None)
            report = verify.run(ctx, progress=lambda _rid: bar.advance(task))
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for p in report.problems:
            print(f"FAIL {p.kind} {p.subject}: {p.message}")
        print(
            f"{'OK' if report.ok else 'FAILED'}: {report.recordings_checked} copies "
            f"({report.bytes_checked} bytes) re-hashed, {report.custody_events} custody events, "
            f"{report.checkpoints} signed checkpoints; {len(report.problems)} problem(s)"
        )
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from agent.actions.export import Exporter

    result = Exporter(_context(args)).run(
        args.ids, Path(args.to), reason=args.reason, operator=args.operator
    )
    if args.json:
        doc = {
            "manifest": str(result.manifest) if result.manifest else None,
            "exported": [vars(e) for e in result.exported],
            "failed": [{"id": rid, "reason": why} for rid, why in result.failed],
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for e in result.exported:
            print(f"exported {e.recording_id} -> {Path(args.to) / e.file} (from {e.source})")
        for rid, why in result.failed:
            print(f"FAILED {rid}: {why}", file=sys.stderr)
        if result.manifest:
            print(f"manifest {result.manifest}")
    return 1 if result.failed else 0


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.file or args.config
    try:
        cfg = config_mod.load(path)
        from agent.actions.check_config import deep_check

        problems = deep_check(cfg)
        if problems:
            raise ConfigError(problems, str(path) if path else None)
    except ConfigError as exc:
        where = f" ({exc.source})" if exc.source else ""
        print(f"configuration invalid{where}:", file=sys.stderr)
        for key, msg in exc.problems:
            print(f"  {key}: {msg}", file=sys.stderr)
        return 78
    print(
        f"configuration OK ({path or 'embedded defaults'}): station {cfg.station.id}, "
        f"data_dir {cfg.station.data_dir}"
    )
    return 0


def cmd_interview(args: argparse.Namespace) -> int:
    from agent.cli.interview import run

    return run(args, _context)


def cmd_decide(args: argparse.Namespace) -> int:
    from agent.actions.quarantine import decide

    results = decide(_context(args), args.ids, args.command, args.operator, args.reason)
    if args.json:
        print(json.dumps([r.__dict__ for r in results], ensure_ascii=False, indent=2))
    else:
        for r in results:
            print(("ok    " if r.ok else "FAIL  ") + r.message)
        if args.command == "accept" and any(r.ok for r in results):
            print(
                "note: later recordings of these recorders are quarantined too until they are "
                "added to the inventory file (inventory.file)"
            )
    return 0 if all(r.ok for r in results) else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.cli import run_simulator

    return run_simulator(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.cli.demo import run_demo

    return run_demo(args)


def cmd_install_systemd(args: argparse.Namespace) -> int:
    from agent.cli.install_systemd import cli_install

    return cli_install(args)


# --- parser -----------------------------------------------------------------------------------


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
        help="config TOML (default: $EVIDENCE_AGENT_CONFIG, else embedded defaults)",
    )
    p.add_argument("--log-level", default=os.environ.get("EVIDENCE_AGENT_LOG_LEVEL", "info"))
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
    sp.add_argument("--since", default=None, help="ISO date/time: recordings starting after")
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
        sp.add_argument("--operator", required=True, help="id of the operator deciding")
        sp.add_argument("--reason", required=True, help="why (kept in the custody log)")
        sp.add_argument("--json", action="store_true")
    sp = add("verify", cmd_verify, "re-hash copies, check custody chain and signatures")
    sp.add_argument("--json", action="store_true")
    sp = add("export", cmd_export, "retrieve recordings with a manifest and a custody event")
    sp.add_argument("ids", nargs="+", metavar="ID", help="recording id or SHA-256 prefix")
    sp.add_argument("--to", required=True, help="directory to write the copies into")
    sp.add_argument("--reason", required=True, help="why they are retrieved (logged)")
    sp.add_argument("--operator", required=True, help="who retrieves them (logged)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp = add("check-config", cmd_check_config, "validate a config file; exit 78 on error")
    sp.add_argument("file", nargs="?")
    sp = add("demo", cmd_demo, "simulated dock with several recorders, live view, summary")
    sp.add_argument("--recorders", type=int, default=4)
    sp.add_argument("--clips", type=int, default=3)
    sp.add_argument("--seconds", type=float, default=4.0)
    sp.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    sp = add("install-systemd", cmd_install_systemd, "install unit, tmpfiles and udev rule")
    sp.add_argument("--dest", default="/")
    sp.add_argument("--dry-run", action="store_true")
    sp.add_argument(
        "--rw",
        action="store_true",
        help="mount recorders read-write (needed unless release_after = never)",
    )
    sp.add_argument("--user", default="evidence")
    sp.add_argument("--data-dir", default=None)
    sp.add_argument("--mount-root", default=None)
    sp = add("interview", cmd_interview, "interview-room sessions: start, stop, mark, report")
    from agent.cli.interview import add_arguments as add_interview

    add_interview(sp)
    from agent.cli.compliance import add_parsers as add_compliance

    add_compliance(add)
    sp = add("simulate", cmd_simulate, "run hardware simulators")
    from simulators.cli import add_arguments

    add_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
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
