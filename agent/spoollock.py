"""Who may clean up the spool: one flock (data_dir/spool.lock) held by every copying process.

The daemon and `ingest DIR` share one ledger and one spool (DESIGN.md). A `copying` row, a temp
file or a copy not yet in the ledger is a crash leftover only if no live process owns it, and
the kernel knows: every copying process holds this lock shared, and recovery runs only in a
process that can take it exclusively, i.e. when no other copier is alive (a killed process's
lock is dropped with it).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class SpoolLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._mode: int | None = None

    def _fileno(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
