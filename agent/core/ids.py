"""Recording ids (UUIDv7: time-ordered, so ids sort by discovery) and SHA-256 prefix rules."""

from __future__ import annotations

import os
import re
import time
import uuid

ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SHA_PREFIX_RE = re.compile(r"^[0-9a-fA-F]{12,64}$")
TOPIC_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def uuid7() -> str:
    """RFC 9562 UUIDv7; Python 3.11's uuid module has no uuid7 yet."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def is_recording_id(text: str) -> bool:
    return bool(ID_RE.match(text))


def is_sha_prefix(text: str) -> bool:
    return bool(SHA_PREFIX_RE.match(text))


def safe_topic_id(text: str) -> str:
    """Map any serial/unit to a topic-safe id: MQTT wildcards and separators never leak in."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text) or "_"
