"""What a camera run asks of the interview service: hand over segments, open and close gaps."""

from __future__ import annotations

from typing import Protocol

from agent.interview.segments import Job


class Hooks(Protocol):
    """What a camera needs from the service."""

    def submit(self, job: Job) -> None: ...
    def gap_open(self, camera: str, kind: str, start: float, detail: str) -> int: ...
    def gap_close(self, gid: int, end: float) -> None: ...
    def gap_refine(self, gid: int, kind: str, detail: str) -> None: ...
    def changed(self) -> None: ...
