"""Named hang points: the blocking sibling of crash points (agent.core.crashpoint).

They do nothing unless `EVIDENCE_AGENT_HANGPOINT=<name>[:<nth>]` is set; then the thread that
passes that point the nth time (default first) blocks there for good, as a loop stuck in a
kernel read or a dead network call would. Tests use it to show the systemd watchdog stops
pinging when one supervised loop hangs.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

_ENV = "EVIDENCE_AGENT_HANGPOINT"
_lock = threading.Lock()
_counts: dict[str, int] = {}


def hit(name: str) -> None:
    """Pass the hang point `name`; block this thread forever if it is the armed one."""
    spec = os.environ.get(_ENV)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        armed = _counts[name] >= (int(nth) if nth else 1)
    if armed:
        logger.warning("hang point %s reached: this thread now blocks (%s)", name, _ENV)
        threading.Event().wait()
