"""SIGTERM and SIGINT stop the daemon, without ever taking a lock in the signal handler.

A Python signal handler runs on the main thread, between two bytecodes, wherever that thread
is. The daemon's main thread spends its life in `stop.wait(1.0)`, which holds the event's
internal lock for an instant on every call; a handler that calls `stop.set()` right then waits
for a lock its own thread holds, and the daemon never stops (seen under load: systemd would
have killed it after `TimeoutStopSec`, without the final checkpoint). Logging takes locks
too. So the handler only starts a thread, and that thread logs and sets the events once the
main thread has let go of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)


def handler(*events: threading.Event) -> Callable[[int, FrameType | None], None]:
    """A signal handler that sets `events` from a short-lived thread."""

    def stop(signum: int) -> None:
        logger.info("signal %d: stopping", signum)
        for event in events:
            event.set()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=stop, args=(signum,), name="signal", daemon=True).start()

    return on_signal
