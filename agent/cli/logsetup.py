"""Logging to stderr, with syslog priority prefixes when stderr is the journal.

Under systemd, stderr is a stream to journald (`$JOURNAL_STREAM` names its device:inode).
journald reads a leading `<N>` (sd-daemon(3)) as the line's priority, so `journalctl -p err`
finds errors; without it every line is priority 6 (info). The prefix is only written when
stderr really is that stream, so a command run from a shell inside a unit's environment, or
redirected to a file, prints plain lines.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

from agent.core.logthrottle import RateLimitFilter

# sd-daemon(3) / syslog(3) priorities.
_PRIORITY = {
    logging.CRITICAL: 2,  # SD_CRIT
    logging.ERROR: 3,  # SD_ERR
    logging.WARNING: 4,  # SD_WARNING
    logging.INFO: 6,  # SD_INFO
    logging.DEBUG: 7,  # SD_DEBUG
}


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (levels between two round down in severity)."""
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class JournalPrefixFormatter(logging.Formatter):
    """Prefix every line of a record (tracebacks included) with `<N>`."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def stderr_is_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is the journal stream systemd connected (device:inode match)."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep or not dev.isdigit() or not ino.isdigit():
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def setup(level: str, stream: TextIO | None = None) -> None:
    """Configure the root logger once for the CLI and the daemon."""
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    if stderr_is_journal(out):
        # The journal stamps time and unit itself.
        handler.setFormatter(JournalPrefixFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Rate-limited per message kind (agent.core.logthrottle): only this handler, so a host
    # that already logs elsewhere (a test harness, an embedding program) keeps its records.
    handler.addFilter(RateLimitFilter())
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
