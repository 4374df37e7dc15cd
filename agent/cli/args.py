"""Argument types and checks of the command line: bad values are usage errors (exit 2) that
name what is accepted, instead of empty results with exit 0.

argparse turns an `ArgumentTypeError` from a `type=` callable into `error: argument --x: ...`
and exit 2; `choices` lists the valid values in its message.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from datetime import date, datetime

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_LEVEL_ENV = "EVIDENCE_AGENT_LOG_LEVEL"


def log_level(text: str) -> str:
    """A log level name, case-insensitive (argparse then checks it against LOG_LEVELS)."""
    return text.strip().lower()


def iso_since(text: str) -> str:
    """An ISO date or date-time (as stored in the ledger); anything else is a usage error.

    The value stays a string: the ledger compares ISO strings, and a bare date sorts before
    every time of that day, which is what "since that day" means.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or date-time; use e.g. 2026-09-30 or "
            "2026-09-30T08:00 (relative words like 'yesterday' are not accepted)"
        ) from None
    return value


def count(text: str) -> int:
    """A count, 0 or more (0 usually meaning "no bound"); anything else is a usage error."""
    try:
        value = int(text.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0 or more)")
    return value


def iso_day(text: str) -> str:
    """A calendar date YYYY-MM-DD (report periods); anything else is a usage error."""
    value = text.strip()
    try:
        date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; use YYYY-MM-DD, e.g. 2026-09-30"
        ) from None
    if len(value) != 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD")
    return value


def default_log_level(environ: Mapping[str, str] | None = None) -> str:
    """The --log-level default: $EVIDENCE_AGENT_LOG_LEVEL, else info."""
    env = os.environ if environ is None else environ
    return log_level(env.get(LOG_LEVEL_ENV) or "info")


def check_log_level(parser: argparse.ArgumentParser, value: str) -> None:
    """Defaults bypass `choices`: a bad $EVIDENCE_AGENT_LOG_LEVEL is a usage error naming it."""
    if value not in LOG_LEVELS:
        parser.error(
            f"{LOG_LEVEL_ENV}={value!r} is not a log level (choose from {', '.join(LOG_LEVELS)})"
        )
