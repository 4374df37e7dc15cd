"""How the CLI finds the station: the admin's config file, and the ledger that config names.

A bare `evidence-agent status` on a station must look at *that station*, not at embedded
defaults (station id = host name, a per-user data dir), which once raised a false integrity
failure in `verify` and silently created an empty ledger in `status`. So:

- with no `--config` and no `$EVIDENCE_AGENT_CONFIG`, the CLI reads
  `<sysconfdir>/evidence-agent/agent.toml` when it exists (`$EVIDENCE_AGENT_SYSCONFDIR`, default
  `/etc`, moves that root for tests); `demo` and `simulate` never read it;
- commands that only read (or annotate) a station's ledger refuse a data dir without one;
- global options (`--config`, `--log-level`) are accepted after the subcommand too.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from agent.core.errors import MissingLedgerError

SYSCONFDIR_ENV = "EVIDENCE_AGENT_SYSCONFDIR"
CONFIG_ENV = "EVIDENCE_AGENT_CONFIG"
# Commands that bring their own simulated station: the admin's file must never leak into them.
SELF_CONTAINED = frozenset({"demo", "simulate"})
# Commands that read an existing station's ledger directly. `run` and `ingest DIR` create one;
# gated actions (tag, accept, reject, export, interview start/stop/mark) go through the
# daemon's gate, whose process holds the ledger: their callers may not even see the data dir.
LEDGER_READERS = frozenset({"status", "verify", "report"})
# Global options repeated on every subcommand (default SUPPRESS, so an absent option leaves the
# value parsed before the subcommand alone instead of resetting it to the subparser's default).
GLOBAL_DESTS = ("config", "log_level")


def system_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`<sysconfdir>/evidence-agent/agent.toml`; sysconfdir is `/etc` unless the env moves it."""
    env = os.environ if environ is None else environ
    root = env.get(SYSCONFDIR_ENV) or "/etc"
    return Path(root) / "evidence-agent" / "agent.toml"


def choose_config(
    cli_value: str | None, command: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The config file a command uses: --config, else $EVIDENCE_AGENT_CONFIG, else the
    installed station file if it exists (never for demo/simulate), else None (embedded)."""
    env = os.environ if environ is None else environ
    if cli_value:
        return cli_value
    if env.get(CONFIG_ENV):
        return env[CONFIG_ENV]
    if command in SELF_CONTAINED:
        return None
    path = system_config_path(env)
    return str(path) if path.is_file() else None


def require_ledger(ledger_path: Path, data_dir: Path, config: str | None) -> None:
    """Raise MissingLedgerError (naming the path and what to do) if there is no ledger."""
    if ledger_path.is_file():
        return
    source = f"config {config}" if config else "embedded defaults (no config file found)"
    raise MissingLedgerError(
        f"no ledger at {ledger_path} (station.data_dir {data_dir}, from {source}); "
        "nothing was created. Point --config (or EVIDENCE_AGENT_CONFIG) at the station's "
        f"config, install it as {system_config_path()}, or start the station once with "
        "`evidence-agent run` / `evidence-agent ingest DIR`, which create the ledger"
    )


def needs_ledger(args: argparse.Namespace) -> bool:
    """True when the parsed command reads an existing station's ledger."""
    command = getattr(args, "command", None)
    if command == "tag":  # --show and --dry-run read; tagging itself asks the gate
        return bool(getattr(args, "show", None) or getattr(args, "dry_run", False))
    if command == "interview":  # report and list read; start, stop and mark ask the gate
        return getattr(args, "verb", None) in ("report", "list")
    if command == "case":  # show reads; conclude asks the gate
        return getattr(args, "verb", None) == "show"
    return command in LEDGER_READERS


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _subparsers(sub)


def repeat_global_options(parser: argparse.ArgumentParser) -> None:
    """Accept `parser`'s global options after any (nested) subcommand as well.

    argparse copies a subparser's defaults over the namespace, so a plain repeat would reset
    `--config` given before the subcommand; SUPPRESS keeps the earlier value when absent.
    """
    globals_ = [a for a in parser._actions if a.dest in GLOBAL_DESTS]
    for sub in _subparsers(parser):
        for action in globals_:
            flags = [f for f in action.option_strings if f not in sub._option_string_actions]
            if not flags:
                continue
            extra = {"type": action.type} if action.type is not None else {}
            sub.add_argument(
                *flags,
                dest=action.dest,
                default=argparse.SUPPRESS,
                choices=action.choices,
                metavar=action.metavar,
                help=action.help,
                **extra,  # type: ignore[arg-type]
            )
