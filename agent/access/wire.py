"""Frames of the gate's Unix-socket protocol, shared by the daemon and the CLI client.

A frame is a 4-byte big-endian length and a UTF-8 JSON object; file descriptors (read-only
copies handed to an export) travel with a frame as SCM_RIGHTS. Frames are capped, so a
client cannot make the daemon buffer without bound.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

MAX_FRAME = 4 << 20
MAX_FDS = 64


class WireError(Exception):
    """The peer sent something that is not a frame of this protocol, or went away."""


class Closed(WireError):
    """The peer closed the connection before sending anything (e.g. a liveness probe)."""


def send(sock: socket.socket, doc: dict[str, Any], fds: list[int] | None = None) -> None:
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise WireError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    data = struct.pack(">I", len(body)) + body
    if fds:
        sent = socket.send_fds(sock, [data], fds)
        if sent < len(data):
            sock.sendall(data[sent:])
    else:
        sock.sendall(data)


def _recv_exact(sock: socket.socket, n: int, fds: list[int]) -> bytes:
    buf = b""
    while len(buf) < n:
        data, got, _flags, _addr = socket.recv_fds(sock, n - len(buf), MAX_FDS)
        fds.extend(got)
        if not data:
            if not buf and n == 4:
                raise Closed("connection closed")
            raise WireError("connection closed in the middle of a frame")
        buf += data
    return buf


def recv(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One frame: (object, received fds). The caller owns (and must close) the fds."""
    fds: list[int] = []
    (size,) = struct.unpack(">I", _recv_exact(sock, 4, fds))
    if size > MAX_FRAME:
        raise WireError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    try:
        doc = json.loads(_recv_exact(sock, size, fds).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"not a JSON frame: {exc}") from None
    if not isinstance(doc, dict):
        raise WireError("a frame must be a JSON object")
    return doc, fds
