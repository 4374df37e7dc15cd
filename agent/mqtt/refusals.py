"""What a command flood may cost: nothing permanent (issue 14, item 2).

A subscriber cannot know who published a message, so every sender name in a command is a
claim. Before anything is checked, one global cap (`Cap`, a token bucket shared by all
senders) drops what comes too fast. Every command that is refused, malformed, dropped or
answered without running anything goes into a `RefusalTally`, which becomes at most one
custody event `command.refused` per `RECORD_SECONDS` for all of them together: counts per
claimed client and per verb, the number of bytes and one SHA-256 over the payloads' hashes,
never a payload. The tally's maps are bounded, so a million distinct claimed ids cost the
same as a hundred.

Also here: `clip` (values echoed in replies and logs are truncated) and `check_depth`
(nested JSON is refused before any model sees it).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

RECORD_SECONDS = 60.0  # at most one custody record of refusals per this many seconds
CAP_RATE = 20.0  # commands per second accepted for checking, all senders together
CAP_BURST = 100  # commands accepted at once after a quiet period
MAX_KEYS = 100  # distinct claimed clients (and verbs) counted by name; the rest as "(other)"
MAX_SAMPLES = 20  # refusals kept with verb, hash and length in one record
MAX_DEPTH = 8  # JSON nesting a command may have (commands are flat objects of lists)
CLIP = 64  # characters of an untrusted value echoed in a reply or a log line
OTHER = "(other)"
NONE = "(none)"


def clip(value: object, limit: int = CLIP) -> str:
    """`repr`-free, bounded text of an untrusted value for replies and logs."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + f"…(+{len(text) - limit} chars)"


def check_depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True if `value` (parsed JSON) nests at most `limit` containers deep; iterative, so
    a hostile payload cannot exhaust the stack here."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


class Cap:
    """Global token bucket: `admit()` is False when commands arrive faster than the cap."""

    def __init__(self, rate: float = CAP_RATE, burst: int = CAP_BURST) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


def _bump(counts: dict[str, int], key: str) -> None:
    if key not in counts and len(counts) >= MAX_KEYS:
        key = OTHER
    counts[key] = counts.get(key, 0) + 1


@dataclass
class _Window:
    first_at: str
    refused: int = 0
    dropped: int = 0
    payload_bytes: int = 0
    by_client: dict[str, int] = field(default_factory=dict)
    by_verb: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    digest: Any = field(default_factory=hashlib.sha256)


class RefusalTally:
    """Refusals collected between custody records; thread-safe (paho's thread drops)."""

    def __init__(self, every: float = RECORD_SECONDS) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._window: _Window | None = None
        self._last_record = float("-inf")  # the first refusal is recorded promptly

    def add(
        self,
        at: str,
        verb: str,
        client: str | None,
        payload: bytes,
        dropped: bool = False,
    ) -> bool:
        """Count one refusal; True if it opened a new window (worth one log line)."""
        sha = hashlib.sha256(payload).hexdigest()
        with self._lock:
            opened = self._window is None
            w = self._window = self._window or _Window(first_at=at)
            if dropped:
                w.dropped += 1
            else:
                w.refused += 1
            w.payload_bytes += len(payload)
            w.digest.update(bytes.fromhex(sha))
            _bump(w.by_client, NONE if client is None else clip(client))
            _bump(w.by_verb, clip(verb))
            if len(w.samples) < MAX_SAMPLES:
                # No error text: it may echo part of the payload.
                w.samples.append({"verb": clip(verb), "sha256": sha, "bytes": len(payload)})
            return opened

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return self._window is not None and now - self._last_record >= self.every

    def take(self, at: str) -> dict[str, Any] | None:
        """The custody payload of the current window (and start a new one), or None."""
        with self._lock:
            w, self._window = self._window, None
            if w is None:
                return None
            self._last_record = time.monotonic()
        return {
            "origin": "mqtt",
            "first_at": w.first_at,
            "last_at": at,
            "refused": w.refused,
            "dropped_over_cap": w.dropped,
            "payload_bytes": w.payload_bytes,
            "payloads_sha256": w.digest.hexdigest(),
            "by_claimed_client": w.by_client,
            "by_verb": w.by_verb,
            "samples": w.samples,
        }
