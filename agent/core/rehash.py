"""The one re-hash routine: SHA-256 and length of a stream read to its end in fixed chunks.

`verify`, the archive audit, the S3 read-back, backup and the offline export check all re-hash
a stored copy the same way through here, so a change (chunk size, algorithm, progress) is made
once. The ingest copy hashes while it copies (agent.core.copier) and is not a re-hash.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

CHUNK = 4 << 20  # big enough to keep syscalls rare, small enough to keep memory flat


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def sha256_stream(f: Readable, chunk: int = CHUNK) -> tuple[str, int]:
    """(hex SHA-256, bytes read) of `f` from its current position to its end."""
    h, size = hashlib.sha256(), 0
    while data := f.read(chunk):
        h.update(data)
        size += len(data)
    return h.hexdigest(), size
