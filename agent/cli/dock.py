"""`evidence-agent console` (the dock console, docs/console.md) and `evidence-agent operators
set-pin|unlock` (an admin sets an officer's console PIN or clears the wrong-PIN back-off).

The console's web stack is imported only when `console` runs (agent.console). PINs travel to
the daemon's gate, which hashes and stores them; a PIN is read from standard input or typed
at a prompt, never taken from the command line (where `ps` would show it).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from agent.core.errors import AgentError

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def cmd_console(args: argparse.Namespace) -> int:
    from agent.config import loader as config_mod

    cfg = config_mod.load(args.config)
    try:
        from agent.console.serve import serve
    except ImportError as exc:
        raise AgentError(
            f"the dock console needs its web stack ({exc.name} is missing): install "
            "evidence-agent[console] (docs/console.md)"
        ) from None
    return serve(cfg)


def _read_pin() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("new PIN (4-12 digits): ")
        if getpass.getpass("again: ") != first:
            raise AgentError("the two PINs differ; nothing was changed")
        return first
    return sys.stdin.readline().strip()


def cmd_operators(args: argparse.Namespace) -> int:
    from agent.cli.client import call
    from agent.config import loader as config_mod

    cfg = config_mod.load(args.config)
    if args.verb == "set-pin" and args.one_time:
        got = call(cfg, "pin.code", {"officer_id": args.officer_id})
        print(f"one-time code for {got['officer_id']}: {got['code']}")
        print(f"valid until {got['expires_at']}; the officer enters it with a new PIN at the")
        print("console (/first-pin). It replaces any PIN the officer had.")
        return 0
    if args.verb == "set-pin":
        call(cfg, "pin.set", {"officer_id": args.officer_id, "pin": _read_pin()})
        print(f"PIN of {args.officer_id} set; its wrong-PIN back-off is cleared")
        return 0
    result = call(cfg, "pin.unlock", {"officer_id": args.officer_id})
    print(f"{args.officer_id}: back-off cleared after {result['failures']} wrong PIN(s)")
    return 0


def add_parsers(add: Add) -> None:
    add("console", cmd_console, "serve the dock console (local web UI; docs/console.md)")
    sp = add("operators", cmd_operators, "dock console PINs: set-pin, unlock (admin)")
    sp.add_argument("verb", choices=("set-pin", "unlock"))
    sp.add_argument("officer_id", metavar="OFFICER_ID")
    sp.add_argument(
        "--one-time",
        action="store_true",
        help="set-pin: print a one-time code (valid 24 h) the officer uses to set a PIN at the "
        "console, instead of reading a PIN",
    )
