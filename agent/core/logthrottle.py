"""Log rate limiting per message kind: a device that fails every 100 ms must not flood the
journal, and the first report of a problem must never be hidden.

A kind is (logger, level, message template): `"archive failed; retrying in %.0f s"` is one
kind whatever its arguments. The first record of a kind always passes; further ones within
`window` seconds are counted, not shown; the first one after the window passes with
"(N similar suppressed)" appended. Installed on the root handlers by the CLI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

WINDOW_SECONDS = 60.0
MAX_KINDS = 2048  # templates are finite; this only bounds memory against odd callers

Kind = tuple[str, int, str]


class RateLimitFilter(logging.Filter):
    def __init__(
        self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[Kind, list[float]] = {}  # kind -> [window ends at, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now < seen[0]:
                seen[1] += 1
                return False
            suppressed = int(seen[1]) if seen is not None else 0
            if seen is None and len(self._kinds) >= MAX_KINDS:
                self._kinds.pop(next(iter(self._kinds)))
            self._kinds[kind] = [now + self.window, 0]
        if suppressed:
            # Appended to the formatted text, so a template's own % fields stay intact.
            record.msg = record.getMessage() + f" ({suppressed} similar suppressed)"
            record.args = None
        return True


def install(window: float = WINDOW_SECONDS) -> None:
    """Rate-limit every handler of the root logger (records of all loggers end there)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RateLimitFilter) for f in handler.filters):
            handler.addFilter(RateLimitFilter(window))
