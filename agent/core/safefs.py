"""Filesystem access on recorder volumes that never follows a symlink out of the volume.

Paths on a volume are handled as bytes (recorders write GBK, garbage, newlines...) and opened
component by component with O_NOFOLLOW relative to the volume's directory fd, so neither a
symlink nor a `..` can lead outside it (what openat2's RESOLVE_BENEATH does, in stdlib terms).
"""

from __future__ import annotations

import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def display(raw: bytes) -> str:
    """Printable form of a raw path: undecodable bytes and control characters escaped."""
    text = raw.decode("utf-8", errors="backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _components(rel: bytes) -> list[bytes]:
    parts = [p for p in rel.split(b"/") if p and p != b"."]
    if any(p == b".." for p in parts):
        raise PermissionError(f"path {display(rel)} leaves the volume")
    if not parts:
        raise PermissionError("empty path")
    return parts


def _parent_fd(root: bytes | str | os.PathLike[str], parts: list[bytes]) -> int:
    """An fd of the directory holding the last component, reached without following links."""
    dfd = os.open(os.fsencode(root), _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            nfd = os.open(part, _DIR_FLAGS, dir_fd=dfd)
            os.close(dfd)
            dfd = nfd
    except BaseException:
        os.close(dfd)
        raise
    return dfd


def open_beneath(
    root: bytes | str | os.PathLike[str], rel: bytes, flags: int = os.O_RDONLY, mode: int = 0o600
) -> int:
    """Open `rel` below `root` without following any symlink; returns an fd."""
    parts = _components(rel)
    dfd = _parent_fd(root, parts)
    try:
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dfd)
    finally:
        os.close(dfd)


def unlink_beneath(root: bytes | str | os.PathLike[str], rel: bytes) -> None:
    parts = _components(rel)
    dfd = _parent_fd(root, parts)
    try:
        st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise PermissionError(f"{display(rel)} is not a regular file; not erasing it")
        os.unlink(parts[-1], dir_fd=dfd)
        os.fsync(dfd)
    finally:
        os.close(dfd)


def stat_beneath(root: bytes | str | os.PathLike[str], rel: bytes) -> os.stat_result:
    fd = open_beneath(root, rel, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | bytes | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
