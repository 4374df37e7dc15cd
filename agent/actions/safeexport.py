"""Safe writes into an operator's export directory, and turning SIGTERM/SIGINT into an abort.

The export target is not the station's: anyone may have planted symlinks or files there. So
every write is relative to a directory file descriptor, never follows a symlink (O_NOFOLLOW,
and the target directory itself is opened with O_NOFOLLOW), and never replaces an existing
file (O_EXCL for the temp name, link() for the final name, which fails if the name exists).
Files are owner-only (0400 once complete). Nothing outside the target is opened for writing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from agent.core.errors import AgentError

FILE_MODE = 0o400
_NO_LINK = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS)


class ExportTargetError(AgentError):
    """The export target cannot be written safely (symlink, existing file, not a directory)."""


class ExportInterrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an Exception
    """SIGTERM/SIGINT arrived during an export: unwind so `export.aborted` is recorded."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"export interrupted by signal {signum}")
        self.signum = signum


def _check_name(name: str) -> str:
    if not name or "/" in name or "\0" in name or name.startswith(".") or name in ("..",):
        raise ExportTargetError(f"refusing export file name {name!r}")
    return name


class ExportDir:
    """The operator's target directory, held open as a directory fd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if path.parent != path:
                path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            why = "it is a symlink or not a directory" if exc.errno in (
                errno.ELOOP, errno.ENOTDIR) else exc.strerror  # fmt: skip
            raise ExportTargetError(f"cannot use export directory {path}: {why}") from exc

    def close(self) -> None:
        os.close(self.fd)

    def exists(self, name: str) -> bool:
        try:
            os.stat(_check_name(name), dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def write_verified(self, name: str, src: IO[bytes], sha256: str | None) -> str:
        """Copy `src` to `name` (new file only); returns its SHA-256.

        With `sha256` given, a copy whose hash differs is removed and ExportTargetError
        raised by the caller's check; the name is only created once the bytes are right.
        """
        _check_name(name)
        if self.exists(name):
            raise ExportTargetError(f"{self.path / name} already exists; nothing was replaced")
        tmp = f".{name}.{os.getpid()}.partial"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=self.fd)
        except FileExistsError as exc:
            raise ExportTargetError(f"{self.path / tmp} already exists; remove it") from exc
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                while data := src.read(4 << 20):
                    h.update(data)
                    out.write(data)
                out.flush()
                os.fchmod(out.fileno(), FILE_MODE)
                os.fsync(out.fileno())
            if sha256 is not None and h.hexdigest() != sha256:
                return h.hexdigest()
            self._publish(tmp, name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=self.fd)
        os.fsync(self.fd)
        return h.hexdigest()

    def write_bytes(self, name: str, data: bytes) -> None:
        import io

        self.write_verified(name, io.BytesIO(data), hashlib.sha256(data).hexdigest())

    def _publish(self, tmp: str, name: str) -> None:
        """Give the finished temp file its name without ever replacing an existing one."""
        try:
            os.link(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
        except FileExistsError as exc:
            raise ExportTargetError(f"{self.path / name} appeared during the export") from exc
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            # FAT/exFAT sticks have no hard links: check, then rename (a narrow window only
            # another writer in the same directory could use).
            if self.exists(name):
                raise ExportTargetError(f"{self.path / name} already exists") from exc
            os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)


@contextlib.contextmanager
def signals_abort() -> Iterator[None]:
    """While exporting, SIGTERM/SIGINT raise ExportInterrupted (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise ExportInterrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def sha256sums(entries: list[tuple[str, str]]) -> bytes:
    """`sha256sum -c` format: "<hex>  <name>" per line (binary-safe names only)."""
    return "".join(f"{sha}  {name}\n" for sha, name in entries).encode("utf-8")


def write_manifest(
    target: ExportDir, stamp: str, manifest: dict[str, Any], files: list[tuple[str, str]]
) -> Path:
    """Write `manifest-<stamp>.json` and a `SHA256SUMS` over `files` (sha256, name) and the
    manifest itself, so `sha256sum -c` checks an export without the station's tools. Both are
    new files: a second export into the same folder gets `SHA256SUMS-<stamp>`."""
    import json

    name = f"manifest-{stamp}.json"
    data = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
    target.write_bytes(name, data)
    sums = [*files, (hashlib.sha256(data).hexdigest(), name)]
    sums_name = "SHA256SUMS" if not target.exists("SHA256SUMS") else f"SHA256SUMS-{stamp}"
    target.write_bytes(sums_name, sha256sums(sums))
    return target.path / name
