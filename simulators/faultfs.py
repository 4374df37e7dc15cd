"""Fault-injecting FUSE filesystems (mfusepy over fuse3) for the fault matrix.

Two filesystems over a backing directory:

- `RecorderFS` serves a simulated recorder volume read-only (erasing a file is allowed with
  `allow_erase`, as a recorder mounted read-write for the wipe gate would) and, on command:
  fails reads with EIO from byte N of a file, ends a file early (short read: fewer bytes than
  its size says), changes a file while it is being read, unplugs mid-file (every operation
  returns ENODEV and the mount is detached), stalls reads past byte N until told otherwise (a
  hung medium or USB link: the reader waits in the kernel), and throttles reads (USB 2.0 is
  ~30 MB/s).
- `SpoolFS` is a writable pass-through for the spool side whose fsync can return EIO.

Faults come from a JSON control file, re-read whenever it is replaced, so a test (or the CLI
`evidence-agent simulate faultfs`) drives a server running in another process; every fault
injected is appended to a JSON-lines events file. Reads are served with direct_io and no
attribute cache, so every read and stat of the agent reaches this code: the kernel neither
retries a failed read behind the agent's back nor hides a changed mtime.

Control file keys (all optional)::

    {"throttle_bps": 30000000,
     "eio":    [{"path": "DCIM/*.MP4", "at": 65536, "times": 1}],
     "eof":    [{"path": "*", "at": 1000}],
     "change": [{"path": "*0002.MP4", "at": 4096, "times": 1}],
     "unplug": [{"path": "*.MP4", "at": 131072}]  or  {"now": true},
     "stall":  [{"path": "*0001.MP4", "at": 262144}],
     "fsync_eio": [{"path": "*.partial", "times": 1}]}

`path` is a glob on the path relative to the volume root; `times` (default: unlimited) is how
often the rule fires before it disarms.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import os
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.faultmount import detach

ENODEV = errno.ENODEV


@dataclass
class Rule:
    path: str
    at: int = 0
    times: int | None = None
    fired: int = 0

    def matches(self, rel: str) -> bool:
        armed = self.times is None or self.fired < self.times
        return armed and fnmatch.fnmatchcase(rel, self.path)


def _rules(spec: Any, once: bool) -> list[Rule]:
    if isinstance(spec, dict):
        spec = [spec]
    out = []
    for item in spec or []:
        if item.get("now"):
            continue  # {"now": true} is handled by Faults.unplug_now
        times = item.get("times", 1 if once else None)
        out.append(Rule(str(item.get("path", "*")), int(item.get("at", 0)), times))
    return out


class Faults:
    """The current fault set, reloaded from the control file when that file is replaced."""

    KINDS = ("eio", "eof", "change", "unplug", "fsync_eio", "stall")

    def __init__(self, control: Path | None) -> None:
        self.control = control
        self._stamp: tuple[int, int, int] | None = None
        self.throttle_bps: float | None = None
        self.rules: dict[str, list[Rule]] = {k: [] for k in self.KINDS}
        self.unplug_now = False
        self.lock = threading.Lock()

    def refresh(self) -> None:
        if self.control is None:
            return
        try:
            st = os.stat(self.control)
        except FileNotFoundError:
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        with self.lock:
            self._stamp = stamp
            try:
                spec = json.loads(Path(self.control).read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                return  # half-written by a non-atomic writer: keep the previous set
            self.load(spec)

    def load(self, spec: dict[str, Any]) -> None:
        rate = spec.get("throttle_bps")
        self.throttle_bps = float(rate) if rate else None
        # A change or an unplug happens once unless told otherwise; a bad sector stays bad.
        self.rules = {k: _rules(spec.get(k), k in ("change", "unplug")) for k in self.KINDS}
        unplug = spec.get("unplug")
        self.unplug_now = isinstance(unplug, dict) and bool(unplug.get("now"))

    def take(self, kind: str, rel: str, end: int | None = None, fire: bool = True) -> Rule | None:
        """The first armed rule of `kind` for `rel` whose byte lies below `end` (a read's end).

        With `fire` the hit is counted (a rule with `times` disarms after that many hits).
        """
        with self.lock:
            for rule in self.rules[kind]:
                if rule.matches(rel) and (end is None or rule.at < end):
                    rule.fired += fire
                    return rule
        return None


class _Base:
    """Pass-through of a backing directory; subclasses add the faults."""

    use_ns = True

    def __init__(self, backing: Path, control: Path | None, events: Path | None) -> None:
        self.root = os.fsencode(backing)
        self.faults = Faults(control)
        self.events = events
        self._ev_lock = threading.Lock()
        self._bucket = 0.0  # monotonic time the throttled "bus" is free again
        self._bucket_lock = threading.Lock()

    def _full(self, path: str) -> bytes:
        return os.path.join(self.root, os.fsencode(path).lstrip(b"/"))

    @staticmethod
    def _rel(path: str) -> str:
        return path.lstrip("/")

    def log(self, fault: str, path: str, **fields: Any) -> None:
        if self.events is None:
            return
        line = json.dumps({"t": time.time(), "fault": fault, "path": self._rel(path), **fields})
        with self._ev_lock, open(self.events, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _check(self) -> None:
        self.faults.refresh()

    def init(self, path: str) -> None:
        self.log("mounted", path)

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        self._check()
        st = os.fstat(fh) if fh is not None else os.lstat(self._full(path))
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino")
        attrs: dict[str, Any] = {k: getattr(st, k) for k in keys}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        attrs.update(st_rdev=st.st_rdev, st_blocks=st.st_blocks)
        return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        self._check()
        return [".", "..", *(os.fsdecode(n) for n in os.listdir(self._full(path)))]

    def readlink(self, path: str) -> str:
        self._check()
        return os.fsdecode(os.readlink(self._full(path)))

    def open(self, path: str, flags: int) -> int:
        self._check()
        return os.open(self._full(path), flags | os.O_NOFOLLOW | os.O_CLOEXEC)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        data = os.pread(fh, size, offset)
        self._throttle(len(data))
        return data

    def _throttle(self, n: int) -> None:
        rate = self.faults.throttle_bps
        if not rate:
            return
        with self._bucket_lock:
            now = time.monotonic()
            self._bucket = max(self._bucket, now) + n / rate
            wait = self._bucket - now
        if wait > 0:
            time.sleep(wait)

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self.root)
        keys = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree")
        return {k: getattr(sv, k) for k in (*keys, "f_favail", "f_flag", "f_namemax")}


class RecorderFS(_Base):
    """A recorder volume that misbehaves on command (see the module docstring)."""

    def __init__(
        self,
        backing: Path,
        mountpoint: Path,
        control: Path | None = None,
        events: Path | None = None,
        allow_erase: bool = False,
        fsname: str | None = None,
    ) -> None:
        super().__init__(backing, control, events)
        self.mountpoint = mountpoint
        self.allow_erase = allow_erase
        self.fsname = fsname
        self.gone = False

    def _check(self) -> None:
        super()._check()
        if self.faults.unplug_now and not self.gone:
            self._unplug("/")
        if self.gone:
            raise OSError(ENODEV, os.strerror(ENODEV))

    def _unplug(self, path: str, at: int | None = None) -> None:
        """Yank the device: every later operation fails, and the mount goes away."""
        self.gone = True
        self.log("unplug", path, at=at)
        print(f"faultfs {self.fsname}: unplugged at {path} byte {at}", file=sys.stderr, flush=True)
        # Detach lazily from another thread: umount must not wait on this very callback.
        args = (self.mountpoint, self.fsname)
        threading.Thread(target=detach, args=args, daemon=True).start()

    def open(self, path: str, flags: int) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return super().open(path, flags)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        self._check()
        rel, faults = self._rel(path), self.faults
        if faults.take("unplug", rel, offset + size) is not None:
            self._unplug(path, offset)
            raise OSError(ENODEV, os.strerror(ENODEV))
        for kind in ("eio", "eof"):
            rule = faults.take(kind, rel, offset + size, fire=False)
            if rule is None:
                continue
            if offset >= rule.at:
                with faults.lock:
                    rule.fired += 1
                self.log(kind, path, at=rule.at, offset=offset)
                if kind == "eio":
                    raise OSError(errno.EIO, os.strerror(errno.EIO))
                return b""  # a device that returns less than its directory entry says
            size = rule.at - offset  # serve up to the bad byte; the next read fails
        self._stall(path, rel, offset, size)
        data = os.pread(fh, size, offset)
        change = faults.take("change", rel, offset + len(data))
        if change is not None:
            self._change(path, change.at)
        self._throttle(len(data))
        return data

    def _stall(self, path: str, rel: str, offset: int, size: int) -> None:
        """A read past a `stall` rule's byte blocks, as a hung medium or USB link leaves the
        reader waiting in the kernel, until the rule is removed from the control file."""
        if self.faults.take("stall", rel, offset + size, fire=False) is None:
            return
        self.log("stall", path, offset=offset)
        while not self.gone and self.faults.take("stall", rel, offset + size, fire=False):
            time.sleep(0.05)
            self.faults.refresh()

    def _change(self, path: str, at: int) -> None:
        """The recorder rewrites part of the file (and its mtime) under the reader."""
        full = self._full(path)
        st = os.stat(full)
        with open(full, "r+b") as fh:
            fh.seek(min(at, max(st.st_size - 8, 0)))
            fh.write(b"CHANGED!")
        os.utime(full, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        self.log("change", path, at=at, sha256=_sha256(full))

    def unlink(self, path: str) -> int:
        self._check()
        if not self.allow_erase:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        os.unlink(self._full(path))
        self.log("erase", path)
        return 0


class SpoolFS(_Base):
    """Writable pass-through whose fsync fails on command (the spool's disk going bad)."""

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        self._check()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(self._full(path), flags, mode)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._full(path), length)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self._check()
        if self.faults.take("fsync_eio", self._rel(path)) is not None:
            self.log("fsync_eio", path)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fh)
        self.log("fsync", path)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        fd = os.open(self._full(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._full(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._full(path), uid, gid, follow_symlinks=False)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._full(path), follow_symlinks=False)
        else:
            os.utime(self._full(path), ns=times, follow_symlinks=False)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._full(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._full(path))
        return 0

    def unlink(self, path: str) -> int:
        os.unlink(self._full(path))
        self.log("unlink", path)
        return 0

    def rename(self, old: str, new: str) -> int:
        os.rename(self._full(old), self._full(new))
        return 0


def _sha256(path: bytes) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(1 << 20):
            h.update(data)
    return h.hexdigest()


def serve(
    kind: str,
    backing: Path,
    mountpoint: Path,
    control: Path | None = None,
    events: Path | None = None,
    allow_erase: bool = False,
    fsname: str = "evagent-faultfs",
) -> None:
    """Mount and serve in the foreground until unmounted (or SIGTERM/SIGINT)."""
    import mfusepy

    ops: _Base
    opts: dict[str, Any] = {"attr_timeout": 0, "entry_timeout": 0, "negative_timeout": 0}
    if kind == "recorder":
        ops = RecorderFS(backing, mountpoint, control, events, allow_erase, fsname)
        opts["direct_io"] = True
        if not allow_erase:
            opts["ro"] = True
    elif kind == "spool":
        ops = SpoolFS(backing, control, events)
    else:
        raise ValueError(f"unknown faultfs kind {kind!r} (recorder or spool)")
    if not stat.S_ISDIR(os.stat(backing).st_mode):
        raise ValueError(f"backing {backing} is not a directory")
    print(f"faultfs {fsname}: serving {backing} on {mountpoint}", file=sys.stderr, flush=True)
    try:
        mfusepy.FUSE(
            ops, str(mountpoint), foreground=True, fsname=fsname, subtype="faultfs", **opts
        )
    except BaseException as exc:
        print(f"faultfs {fsname}: stopped by {exc!r}", file=sys.stderr, flush=True)
        raise
    print(f"faultfs {fsname}: unmounted", file=sys.stderr, flush=True)
