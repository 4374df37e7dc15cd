"""Finding recorder volumes under the mount roots: events are hints, the rescan is the truth.

Three wake-up sources feed one loop: watchdog (inotify) on the mount roots, POLLPRI on
/proc/self/mountinfo (inotify alone misses mounts on an existing directory), and a timer.
Each pass lists the roots, works out which entries are volumes (a mount point, or a
directory with a recognised recorder layout), and reports a volume as ready once its file
list has been unchanged for `detect.settle_seconds`; a periodic rescan re-reports every
present volume so the ledger reconciles with what is really there.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config.loader import AgentConfig
from agent.recorders.volume import MAX_DEPTH, looks_like_volume

logger = logging.getLogger(__name__)

MOUNTINFO = "/proc/self/mountinfo"


def mount_points() -> set[str]:
    """Mount points from mountinfo (field 5, octal escapes undone)."""
    points = set()
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                fields = line.split(" ")
                if len(fields) > 4:
                    points.add(_unescape(fields[4]))
    except OSError:
        pass
    return points


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _listing(path: Path) -> tuple[tuple[str, int], ...] | None:
    """Names and sizes of the tree, down to volume.MAX_DEPTH (cheap: no file is opened).

    Iterative on purpose: os.walk recurses in Python 3.11, so a hostile volume nested a
    thousand levels deep would raise RecursionError on every pass and stop detection for
    every dock, not just that one.
    """
    out: list[tuple[str, int]] = []
    stack: list[tuple[str, int]] = [(os.fspath(path), 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            if depth == 0:
                return None
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH:
                        stack.append((entry.path, depth + 1))
                else:
                    out.append((entry.path, entry.stat(follow_symlinks=False).st_size))
            except OSError:
                continue
    return tuple(sorted(out))


@dataclass
class _Candidate:
    names: tuple[str, ...] | None
    listing: tuple[tuple[str, int], ...] | None
    since: float
    reported: bool = False


class VolumeWatcher:
    """Calls on_ready(path) when a volume settles (and at each rescan), on_gone(path)."""

    def __init__(
        self,
        cfg: AgentConfig,
        stop: threading.Event,
        on_ready: Callable[[Path], None],
        on_gone: Callable[[Path], None],
    ) -> None:
        self.cfg = cfg
        self.stop = stop
        self.on_ready = on_ready
        self.on_gone = on_gone
        self.wake = threading.Event()
        self._seen: dict[Path, _Candidate] = {}
        self._observer: object | None = None
        self._last_rescan = 0.0
        self.on_pass: Callable[[float], None] | None = None

    def start(self) -> list[threading.Thread]:
        for root in self.cfg.detect.mount_roots:
            if not root.is_dir():
                logger.warning(
                    "mount root %s does not exist; create it or fix "
                    "detect.mount_roots (it is watched once it appears)",
                    root,
                )
        self._start_watchdog()
        threads = [
            threading.Thread(target=self._mountinfo_loop, name="detect-mountinfo", daemon=True),
            threading.Thread(target=self._loop, name="detect", daemon=True),
        ]
        for t in threads:
            t.start()
        return threads

    def _start_watchdog(self) -> None:
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - a dependency, but detection still polls
            logger.warning("watchdog not importable; relying on polling")
            return
        wake = self.wake

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                wake.set()

        observer = Observer()
        for root in self.cfg.detect.mount_roots:
            if root.is_dir():
                observer.schedule(Handler(), str(root), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def request_rescan(self) -> None:
        """A full rescan now (e.g. an operator's `rescan` command), not at the next period."""
        self._last_rescan = 0.0
        self.wake.set()

    def stop_watchdog(self) -> None:
        obs = self._observer
        if obs is not None:
            obs.stop()  # type: ignore[attr-defined]

    def _mountinfo_loop(self) -> None:
        # The kernel flags mountinfo with POLLPRI|POLLERR whenever the mount table changes.
        try:
            fh = open(MOUNTINFO, "rb")  # noqa: SIM115 - held for the thread's life
        except OSError:
            return
        with fh:
            poller = select.poll()
            poller.register(fh.fileno(), select.POLLPRI | select.POLLERR)
            while not self.stop.is_set():
                if poller.poll(500):
                    fh.seek(0)
                    fh.read()
                    self.wake.set()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.scan_once()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad volume
                logger.exception("volume detection pass failed; retrying")
            wait = self._next_wait()
            if self.on_pass is not None:
                self.on_pass(wait)  # liveness for the systemd watchdog (agent.core.liveness)
            self.wake.wait(wait)
            self.wake.clear()

    def _next_wait(self) -> float:
        pending = any(not c.reported for c in self._seen.values())
        poll = self.cfg.detect.poll_seconds
        return min(poll, max(self.cfg.detect.settle_seconds / 4, 0.05)) if pending else poll

    def candidates(self, mounts: set[str] | None = None) -> list[Path]:
        mounts = mount_points() if mounts is None else mounts
        found = []
        for root in self.cfg.detect.mount_roots:
            try:
                entries = sorted(root.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_symlink() or not entry.is_dir():
                    continue
                if str(entry) in mounts or looks_like_volume(entry):
                    found.append(entry)
        return found

    def scan_once(self) -> None:
        now = time.monotonic()
        rescan = now - self._last_rescan >= self.cfg.detect.rescan_seconds
        if rescan:
            self._last_rescan = now
        present = set()
        mounts = mount_points()
        for path in self.candidates(mounts):
            present.add(path)
            listing = _listing(path)
            names = None if listing is None else tuple(n for n, _ in listing)
            cand = self._seen.get(path)
            if cand is None or cand.names != names:
                # A new or changed file list restarts the settle clock for the volume.
                self._seen[path] = cand = _Candidate(names, listing, now)
            grown = cand.listing != listing  # same names, sizes moved: a file still growing
            cand.listing = listing
            # A mount appears whole (the kernel shows the complete filesystem at once), so it
            # needs no settle time; a plain directory may still be being filled by a copy.
            settle = 0.0 if str(path) in mounts else self.cfg.detect.settle_seconds
            settled = now - cand.since >= settle
            if settled and (not cand.reported or rescan or grown):
                cand.reported = True
                self.on_ready(path)
        for gone in set(self._seen) - present:
            del self._seen[gone]
            self.on_gone(gone)
