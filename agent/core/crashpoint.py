"""Named crash points for the kill harness (FoundationDB's BUGGIFY idea).

They do nothing unless `EVIDENCE_AGENT_CRASHPOINT=<name>[:<nth>]` is set; then the process
SIGKILLs itself the nth time (default first) it passes that point, so a test can stop the
agent exactly between, say, fsync and rename.
"""

from __future__ import annotations

import os
import signal
import threading

_ENV = "EVIDENCE_AGENT_CRASHPOINT"
_lock = threading.Lock()
_counts: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(_ENV)
    if not spec:
        return None
    name, _, nth = spec.partition(":")
    return name, int(nth) if nth else 1


def hit(name: str) -> None:
    """Pass the crash point `name`; SIGKILL here if it is the armed one."""
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] >= target[1]:
            os.kill(os.getpid(), signal.SIGKILL)
