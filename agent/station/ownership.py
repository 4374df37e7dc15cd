"""One owner, one daemon: who may write the ledger directly, and only one `run` per data dir.

- `require_owner(data_dir, command)`: commands that write the ledger directly (`ingest`, and
  `backup`/`restore`/`migrate`) run as the data dir's owner. Run as root, they drop to that
  owner (group, supplementary groups, user) before touching anything, so no root-owned lock,
  spool folder or WAL file is left behind for the service user to trip over; run as anyone
  else, they refuse with the `sudo -u <owner> ...` line that works.
- `DaemonLock`: `run` holds an exclusive flock on `<data_dir>/locks/daemon.lock` for its whole
  life. The kernel drops it when the process dies, however it dies, so there is no stale PID
  file to guess about; a second `run` on the same data dir exits with a clear message.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import shlex
import sys
from pathlib import Path

from agent.core.errors import AlreadyRunningError, NotOwnerError

logger = logging.getLogger(__name__)

LOCK_NAME = "daemon.lock"


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def require_owner(data_dir: Path, command: str, argv: list[str] | None = None) -> None:
    """Make this process the data dir's owner, or refuse naming the command to run instead.

    A data dir that does not exist yet belongs to whoever creates it. Call before anything
    opens the ledger or creates files under the data dir.
    """
    try:
        st = os.stat(data_dir)
    except FileNotFoundError:
        return
    euid = os.geteuid()
    if euid == st.st_uid:
        return
    owner = _owner_name(st.st_uid)
    if euid == 0:
        _drop_to(st.st_uid, owner, data_dir)
        return
    args = argv if argv is not None else ["evidence-agent", *sys.argv[1:]]
    raise NotOwnerError(
        f"`{command}` writes the ledger in {data_dir}, which belongs to {owner}; you are "
        f"{_owner_name(euid)}. Run it as the owner: sudo -u {owner} {shlex.join(args)} "
        f"(or, if {_owner_name(euid)} is meant to own the station, "
        f"chown -R {_owner_name(euid)} {data_dir})"
    )


def _drop_to(uid: int, owner: str, data_dir: Path) -> None:
    try:
        entry = pwd.getpwuid(uid)
        gid, name = entry.pw_gid, entry.pw_name
    except KeyError:
        gid, name = os.stat(data_dir).st_gid, None
    if name is not None:
        os.initgroups(name, gid)
    else:
        os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    logger.info("running as %s (owner of %s), not as root", owner, data_dir)


class DaemonLock:
    """The exclusive lock a `run` daemon holds on its data dir for its whole life."""

    def __init__(self, locks_dir: Path, data_dir: Path) -> None:
        self.path = locks_dir / LOCK_NAME
        self.data_dir = data_dir
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunningError(
                f"another evidence-agent daemon (pid {holder}) is already running on data dir "
                f"{self.data_dir} (it holds {self.path}); stop it first "
                "(systemctl stop evidence-agent) or give this one its own station.data_dir"
            ) from None
        # The pid is for the message only; the lock itself is the kernel's flock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
