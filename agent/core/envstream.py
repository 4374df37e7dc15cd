"""Reading an encrypted envelope from a forward-only stream (an S3 object body) as plaintext.

`agent.core.envelope.Opened` needs a file descriptor it can pread; an archived object read
back from S3 arrives as a stream instead. `plain_reader` looks at the first bytes: an envelope
is opened with the keyring (the station KEKs, or the agency's recovery private key) and its
chunks are authenticated one after the other (the last one only once the stream has ended, so
a cut-off object fails); anything else is passed through as it is (objects archived in
plaintext). A chunk that fails raises EnvelopeError naming the object and the chunk.
"""

from __future__ import annotations

from typing import Protocol

from agent.core import envelope
from agent.core.errors import EnvelopeError, EnvelopeKeyError


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def _read_exact(raw: Readable, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = raw.read(n - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


class _Buffered:
    """`read(n)` semantics over a generator of pieces."""

    def __init__(self) -> None:
        self._buf = b""
        self._done = False

    def _more(self) -> bytes:
        raise NotImplementedError

    def read(self, size: int = -1, /) -> bytes:
        while not self._done and (size < 0 or len(self._buf) < size):
            piece = self._more()
            if not piece:
                self._done = True
            self._buf += piece
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out


class PlainStream(_Buffered):
    """The plaintext of an envelope read from `raw` (whose first `head` bytes were read)."""

    def __init__(self, head: bytes, raw: Readable, keys: envelope.Keyring | None, name: str):
        super().__init__()
        if keys is None:
            raise EnvelopeKeyError(
                f"{name} is encrypted and this station has no encryption key configured "
                "(crypto.key_file); see docs/security.md"
            )
        self.name = name
        self.header = envelope.parse_header(head, name)
        self.dk = envelope.unwrap(self.header, keys, name)
        self._aead = envelope.chunk_cipher(self.header.suite, self.dk)
        self._raw = raw
        self._step = self.header.chunk_size + envelope.TAG
        self._index = 0
        self._next = _read_exact(raw, self._step)
        if not self._next:
            raise EnvelopeError(f"{name} is truncated: its envelope holds no chunk")

    def _more(self) -> bytes:
        cur = self._next
        if not cur:
            return b""
        self._next = _read_exact(self._raw, self._step)
        final = not self._next
        i = self._index
        self._index += 1
        return envelope.open_chunk(self._aead, self.header, i, final, cur, self.name)


class Passthrough(_Buffered):
    """A plaintext object: the bytes already read, then the rest of the stream."""

    def __init__(self, head: bytes, raw: Readable) -> None:
        super().__init__()
        self._buf = head
        self._raw = raw

    def _more(self) -> bytes:
        return self._raw.read(4 << 20)


def plain_reader(raw: Readable, keys: envelope.Keyring | None, name: str) -> _Buffered:
    """A reader of the plaintext of `raw`: through the envelope if it is one."""
    head = _read_exact(raw, envelope.HEADER_SIZE)
    if envelope.is_envelope(head):
        return PlainStream(head, raw, keys, name)
    return Passthrough(head, raw)
