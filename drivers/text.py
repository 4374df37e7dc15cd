"""Decoding text fields that recorders send: fixed-size, NUL-padded, often GBK, sometimes junk.

A recorder with a garbled name must still be ingested, so decoding never fails: bytes that do
not decode and control characters are shown escaped (`\\xNN`), and the caller gets a note.
"""

from __future__ import annotations

import re

SERIAL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def escape_text(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def decode_field(raw: bytes, encoding: str = "gbk") -> tuple[str, str | None]:
    """(text, problem) for a NUL-padded field; problem is None when it decoded cleanly."""
    head, nul, tail = raw.partition(b"\0")
    problem = None
    if nul and tail.strip(b"\0"):
        problem = f"bytes after the NUL terminator ({tail.rstrip(bytes(1)).hex()})"
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError:
        text = head.decode(encoding, errors="backslashreplace")
        problem = problem or f"bytes that are not valid {encoding.upper()}"
    shown = escape_text(text)
    if shown != text and problem is None:
        problem = "non-printable characters"
    return shown.strip(), problem


def valid_serial(text: str) -> bool:
    return bool(SERIAL_RE.match(text))
