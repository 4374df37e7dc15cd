"""The keys `verify-archive` trusts: the pinned key and the hand-overs in the archived segments.

Key hand-overs (`key.rotated` custody events, agent.ledger.handover) are read from the archived
custody segments themselves, in custody order, and followed from the pinned key with the same
rules `verify` uses (`handover.follow`): a new key is trusted only through a hand-over signed
by the key in force; the first one that is not stops the chain and is named (`event N`), and
nothing signed by a key after it is trusted.

An anchor is the checkpoint as signed: it is checked with the key in force at its head event.
A segment is signed when it is shipped, which may come after a later hand-over (a checkpoint
taken, the key rotated, then the segment shipped): its signature is accepted from the key in
force at its last event or from a key handed over to after that event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.ledger import handover


def schedule(
    docs: Iterable[dict[str, Any]], pinned: Ed25519PublicKey, station: str
) -> handover.Schedule:
    """The keys in force over the archived chain, following its hand-overs from `pinned`."""
    return handover.follow(_handovers(docs), pinned, station)


def _handovers(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[int, str]]:
    seen: set[int] = set()
    for doc in docs:
        for e in doc.get("events") or []:
            if not isinstance(e, dict) or e.get("type") != handover.EVENT:
                continue
            try:
                seq = int(e["seq"])
            except (KeyError, TypeError, ValueError):
                continue  # an unreadable event is reported by the chain check
            if seq not in seen:  # an overlapping segment repeats it: followed once
                seen.add(seq)
                yield seq, str(e.get("payload"))


def segment_keys(sched: handover.Schedule, last_seq: int) -> list[Ed25519PublicKey]:
    """The keys that may have signed a segment ending at `last_seq` (see the module doc)."""
    in_force = sched.key_for(last_seq)
    at = next(i for i, (_, pub) in enumerate(sched.keys) if pub is in_force)
    return [pub for _, pub in sched.keys[at:]]


def verifies(keys: Iterable[Ed25519PublicKey], signature: object, message: str) -> bool:
    """Whether the hex `signature` over `message` verifies with one of `keys`."""
    try:
        sig = bytes.fromhex(str(signature))
    except ValueError:
        return False
    for pub in keys:
        try:
            pub.verify(sig, message.encode("utf-8"))
        except InvalidSignature:
            continue
        return True
    return False
