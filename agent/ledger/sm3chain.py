"""The custody chain under 国密 (`crypto.suite = "sm"`): an SM3 chain beside the SHA-256 one.

Each custody event written while the suite is "sm" carries `sm3`: SM3 (GB/T 32905) over the
same canonical JSON as its SHA-256 hash, with `"alg": "sm3"` and `"prev"` the previous event's
SM3 value, so the SM3 chain stands on its own for a 密评 check with national algorithms only.
It starts at a `crypto.suite_changed` event with payload suite "sm" (prev = 64 zeros) and
ends at one with suite "intl" (which carries no SM3 value); events before the switch keep
only SHA-256 and stay valid. Whether an event carries SM3 follows from the chain itself:
the previous event has one, or the event starts the chain. One SM3 per event.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import hashes

SUITE_EVENT = "crypto.suite_changed"
SM3_ALG = "sm3"
SM3_GENESIS = "0" * 64


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_body(
    seq: int,
    at: str,
    type_: str,
    recording_id: str | None,
    actor: str,
    payload: str,
    alg: str,
    prev: str,
) -> bytes:
    """The canonical bytes an event's chain value is taken over (UTF-8 JSON, sorted keys)."""
    return canonical(
        {
            "seq": seq,
            "at": at,
            "type": type_,
            "recording_id": recording_id,
            "actor": actor,
            "payload": json.loads(payload),
            "alg": alg,
            "prev": prev,
        }
    ).encode("utf-8")


def sm3_hex(data: bytes) -> str:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize().hex()


def starts(type_: str, payload: dict[str, Any]) -> bool | None:
    """True for the event that starts the SM3 chain, False for the one that ends it, else None."""
    if type_ != SUITE_EVENT:
        return None
    return payload.get("suite") == "sm"


def carries(type_: str, payload: dict[str, Any], prev_sm3: str | None) -> bool:
    """Whether an event carries an SM3 value, from the event and its predecessor alone."""
    switch = starts(type_, payload)
    return switch if switch is not None else prev_sm3 is not None


def value(
    seq: int,
    at: str,
    type_: str,
    recording_id: str | None,
    actor: str,
    payload: str,
    prev_sm3: str | None,
) -> str:
    """The event's SM3 chain value (the chain's first event links to SM3_GENESIS)."""
    prev = SM3_GENESIS if prev_sm3 is None or type_ == SUITE_EVENT else prev_sm3
    return sm3_hex(event_body(seq, at, type_, recording_id, actor, payload, SM3_ALG, prev))


def switch_needed(suite: str | None, head_sm3: str | None) -> bool:
    """Whether the configured suite differs from the chain's (None: the caller did not say)."""
    if suite is None:
        return False
    return (suite == "sm") != (head_sm3 is not None)


def switch_payload(suite: str) -> dict[str, Any]:
    """Payload of the custody event that records a change of crypto.suite."""
    return {"suite": suite, "chain": "sha256+sm3" if suite == "sm" else "sha256"}


def sm2_fingerprint(point: bytes) -> str:
    """Fingerprint of an SM2 public point, as checkpoint statements name it (`sm2_key`)."""
    return "sm3:" + sm3_hex(point)[:32]
