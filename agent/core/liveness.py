"""Progress of the daemon's supervised loops, for an honest systemd watchdog.

Each loop reports progress (after every pass, and per chunk or attempt inside long work such
as a copy at USB 2.0 speed or an archive back-off) and says how long it will wait before its
next pass. A loop is *stale* once it has been silent longer than that wait plus its deadline
(`watchdog.default_deadline_seconds`, or per loop in `watchdog.deadlines`, keyed by the loop
name without its `-N` suffix: `ingest`, `archive`, `detect`, `compliance`, `mqtt-state`...).
The daemon sends `WATCHDOG=1` only while no loop is stale, so a hung loop gets the agent
restarted by systemd instead of pinging on with a dead worker.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping


def kind(loop: str) -> str:
    """`ingest-3` -> `ingest`: one deadline for every worker of a kind."""
    return re.sub(r"-\d+$", "", loop)


class Liveness:
    def __init__(
        self,
        default: float,
        deadlines: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default
        self.deadlines = dict(deadlines or {})
        self.clock = clock
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}

    def deadline(self, loop: str) -> float:
        return self.deadlines.get(loop, self.deadlines.get(kind(loop), self.default))

    def progress(self, loop: str | None = None, wait: float = 0.0) -> None:
        """`loop` (default: this thread's name) moved on; its next report is due after `wait`
        seconds plus its deadline. Unregistered threads are ignored."""
        name = loop or threading.current_thread().name
        with self._lock:
            if loop is None and name not in self._due:
                return
            self._due[name] = self.clock() + max(wait, 0.0) + self.deadline(name)

    def register(self, loop: str) -> None:
        self.progress(loop)

    def retire(self, loop: str) -> None:
        """The loop ended (shutdown): it is no longer watched."""
        with self._lock:
            self._due.pop(loop, None)

    def stale(self) -> list[str]:
        now = self.clock()
        with self._lock:
            return sorted(name for name, due in self._due.items() if now > due)
