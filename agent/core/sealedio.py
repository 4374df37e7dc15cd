"""Reading a stored copy as plaintext, whether it is an encrypted envelope or a plain file.

Every reader of spool and local-archive copies (verify, export, the archive upload, the re-read
after a copy) comes through here, so a station holding both old plaintext copies and new
envelopes reads either the same way. An envelope is recognised by its magic; opening one needs
the station's keyring (agent.station.kek), and without it the error says which key to restore.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from agent.core import envelope
from agent.core.errors import EnvelopeError, EnvelopeKeyError

logger = logging.getLogger(__name__)

PIECE = 4 << 20  # plaintext read per step; an envelope's chunks are at most this large


def is_sealed(path: Path) -> bool:
    with open(path, "rb") as f:
        return envelope.is_envelope(f.read(len(envelope.MAGIC)))


class PlainReader(io.RawIOBase):
    """A read-only, seekable plaintext view of a copy at `path` (owns its descriptor)."""

    def __init__(self, path: Path, keys: envelope.Keyring | None) -> None:
        super().__init__()
        self.name = str(path)
        self._fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self._pos = 0
        try:
            head = os.pread(self._fd, len(envelope.MAGIC), 0)
            self.sealed = envelope.is_envelope(head)
            self._env: envelope.Opened | None = None
            if self.sealed:
                if keys is None:
                    raise EnvelopeKeyError(
                        f"{path} is encrypted and this station has no encryption key "
                        "configured (crypto.key_file); see docs/security.md"
                    )
                self._env = envelope.Opened(self._fd, keys, str(path))
                self.size = self._env.size
            else:
                self.size = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._fd)
            raise

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def pread(self, n: int, offset: int) -> bytes:
        if self._env is not None:
            return self._env.pread(n, offset)
        return os.pread(self._fd, n, offset)

    def readall(self) -> bytes:
        pieces = []
        while data := self.pread(4 << 20, self._pos):
            pieces.append(data)
            self._pos += len(data)
        return b"".join(pieces)

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.pread(len(b), self._pos)
        memoryview(b)[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def iter_plain(r: PlainReader, size: int = 4 << 20, drop_cache: bool = False) -> Iterator[bytes]:
    """Plaintext pieces in order; `drop_cache` evicts what was read."""
    if r._env is not None:
        step = r._env.header.chunk_size + envelope.TAG
        for i in range(r._env.chunks):
            yield r._env.chunk(i)
            if drop_cache:
                os.posix_fadvise(r._fd, envelope.HEADER_SIZE + i * step, step,
                                 os.POSIX_FADV_DONTNEED)  # fmt: skip
        return
    offset = 0
    while data := os.pread(r._fd, size, offset):
        yield data
        if drop_cache:
            os.posix_fadvise(r._fd, offset, len(data), os.POSIX_FADV_DONTNEED)
        offset += len(data)


def hash_plain(
    path: Path, keys: envelope.Keyring | None, drop_cache_first: bool = False
) -> tuple[str, int]:
    """(SHA-256, size) of the plaintext of a copy; with drop_cache_first from the disk."""
    with PlainReader(path, keys) as r:
        if drop_cache_first:
            # The copy was fsynced, so its pages are clean and DONTNEED really evicts them.
            os.posix_fadvise(r._fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.posix_fadvise(r._fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        h = hashlib.sha256()
        n = 0
        if r.size <= PIECE:  # one piece: nothing to overlap, and no thread per small file
            for piece in iter_plain(r, drop_cache=drop_cache_first):
                h.update(piece)
                n += len(piece)
            return h.hexdigest(), n
        # Hash one piece while the next is read and decrypted (hashlib releases the GIL): the
        # re-read after a copy then costs about one pass, not decrypt plus hash.
        with ThreadPoolExecutor(1, thread_name_prefix="plain-hash") as pool:
            pending: Future[None] | None = None
            for piece in iter_plain(r, drop_cache=drop_cache_first):
                if pending is not None:
                    pending.result()
                pending = pool.submit(h.update, piece)
                n += len(piece)
            if pending is not None:
                pending.result()
        return h.hexdigest(), n


def plaintext_pipe_fd(
    fd: int,
    keys: envelope.Keyring,
    name: str,
    failed: list[tuple[int, EnvelopeError]] | None = None,
) -> tuple[int, int]:
    """(read end of a pipe yielding the plaintext of the envelope open at `fd`, its size).
    The pump reads a duplicate of `fd`, so the caller may close its own at any time; a chunk
    that fails authentication ends the stream early (the reader sees fewer bytes) and, with
    `failed`, is appended to it as (chunk index, error) before the pipe closes."""
    own = os.dup(fd)
    try:
        opened = envelope.Opened(own, keys, name)
    except BaseException:
        os.close(own)
        raise
    r, w = os.pipe2(os.O_CLOEXEC)

    def pump() -> None:
        done = 0
        try:
            for piece in opened:
                view = memoryview(piece)
                while view:
                    view = view[os.write(w, view) :]
                done += 1
        except (OSError, EnvelopeError) as exc:
            logger.warning("plaintext stream of %s ended early: %s", name, exc)
            if failed is not None and isinstance(exc, EnvelopeError):
                failed.append((done, exc))
        finally:
            os.close(w)
            os.close(own)

    threading.Thread(target=pump, name="plain-source", daemon=True).start()
    return r, opened.size


def plaintext_pipe(path: Path, keys: envelope.Keyring | None) -> int:
    """A read-only pipe descriptor that yields the plaintext of an encrypted copy, so the
    daemon can hand an export client plaintext without ever writing it to a disk. A copy that
    fails authentication ends the stream early: the client's hash then differs and the export
    records the mismatch. The pump thread ends when the reader closes its end."""
    reader = PlainReader(path, keys)  # opens the envelope now: a missing key is raised here
    r, w = os.pipe2(os.O_CLOEXEC)

    def pump() -> None:
        try:
            for piece in iter_plain(reader):
                view = memoryview(piece)
                while view:
                    view = view[os.write(w, view) :]
        except (OSError, EnvelopeError) as exc:
            logger.warning("plaintext stream of %s ended early: %s", path, exc)
        finally:
            os.close(w)
            reader.close()

    threading.Thread(target=pump, name="export-plain", daemon=True).start()
    return r
