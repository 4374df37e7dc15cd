"""Coordination between agent processes that copy: the daemon and `ingest DIR` share one ledger
and one spool (docs/architecture.md), and only the kernel knows which of them is still alive.

- `SpoolLock` (`<data_dir>/locks/spool.lock`): every copying process holds it shared. A
  `copying` row, a temp file or a copy not yet in the ledger is a crash leftover only if no
  other copier is alive, so recovery runs only in a process that can take it exclusively
  (a killed process's lock is dropped with it).
- `DeviceLocks` (`<data_dir>/locks/device-<id>.lock`): one reader per recorder across
  processes, as `Bays.busy` (agent.ingest.bays) is within one; `ingest DIR` holds its
  recorder for the whole run, so the daemon leaves that recorder to it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class SpoolLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._mode: int | None = None

    def _fileno(self) -> int:
        if self._fd is None:
            self._fd = _open(self.path)
        return self._fd

    def shared(self) -> None:
        """Hold the lock shared (waits while another process is recovering the spool)."""
        if self._mode != fcntl.LOCK_SH:
            fcntl.flock(self._fileno(), fcntl.LOCK_SH)
            self._mode = fcntl.LOCK_SH

    def try_exclusive(self) -> bool:
        """True if this process is now the only one; call shared() when done."""
        try:
            fcntl.flock(self._fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._mode = None  # a failed conversion may have dropped the shared lock
            return False
        self._mode = fcntl.LOCK_EX
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = self._mode = None


class DeviceLocks:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._held: dict[int, int] = {}  # device id -> fd of its held lock
        self._pinned: set[int] = set()
        self._lock = threading.Lock()

    def try_acquire(self, device_id: int, pin: bool = False) -> bool:
        """Take recorder `device_id` for this process unless another process reads it.
        A pinned recorder stays taken across copies until unpin()."""
        with self._lock:
            if device_id not in self._held:
                fd = _open(self.dir / f"device-{int(device_id)}.lock")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    return False
                self._held[device_id] = fd
            if pin:
                self._pinned.add(device_id)
            return True

    def release(self, device_id: int) -> None:
        """After a copy: let other processes read this recorder (unless it is pinned)."""
        with self._lock:
            if device_id in self._pinned:
                return
            fd = self._held.pop(device_id, None)
            if fd is not None:
                os.close(fd)  # closing the only descriptor drops the flock

    def unpin(self, device_id: int) -> None:
        with self._lock:
            self._pinned.discard(device_id)
        self.release(device_id)

    def close(self) -> None:
        with self._lock:
            for fd in self._held.values():
                os.close(fd)
            self._held.clear()
            self._pinned.clear()
