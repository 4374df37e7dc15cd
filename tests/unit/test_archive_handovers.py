"""Which keys `verify-archive` trusts (agent.actions.archivekeys, issue #19 follow-up): the
hand-overs read from archived segment documents are followed from the pinned key by the one
implementation `verify` uses (handover.follow), with real Ed25519 keys."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.actions import archivekeys
from agent.ledger import handover, stationkey

STATION = "st-unit"


def _handover(old: Ed25519PrivateKey, new: Ed25519PrivateKey, signer: Ed25519PrivateKey) -> str:
    """A `key.rotated` payload as `keys rotate` records it, signed by `signer`."""
    old_fp = stationkey.fingerprint(old.public_key())
    new_fp = stationkey.fingerprint(new.public_key())
    new_pem = handover.public_pem(new.public_key())
    st = handover.statement(STATION, old_fp, new_fp, new_pem)
    return json.dumps({
        "old": old_fp, "new": new_fp, "old_public_key": handover.public_pem(old.public_key()),
        "new_public_key": new_pem, "signature": signer.sign(st.encode()).hex(),
    })  # fmt: skip


def _doc(*events: tuple[int, str, str]) -> dict:
    return {"events": [{"seq": s, "type": t, "payload": p} for s, t, p in events]}


def test_two_hand_overs_are_followed_and_segments_may_be_signed_later() -> None:
    k1, k2, k3 = (Ed25519PrivateKey.generate() for _ in range(3))
    docs = [
        _doc((1, "ingest.copied", "{}"), (5, handover.EVENT, _handover(k1, k2, k1))),
        _doc((9, handover.EVENT, _handover(k2, k3, k2)), (10, "ingest.copied", "{}")),
    ]
    sched = archivekeys.schedule(docs + docs[1:], k1.public_key(), STATION)  # overlap: once
    assert not sched.problems
    assert sched.fingerprints == [stationkey.fingerprint(k.public_key()) for k in (k1, k2, k3)]
    msg = "segment statement"
    # Ending before the first hand-over: its key, or one handed over to later (shipped late).
    early = archivekeys.segment_keys(sched, 4)
    assert all(archivekeys.verifies(early, k.sign(msg.encode()).hex(), msg) for k in (k1, k2, k3))
    # Ending after the second: only the newest key; an older one's signature does not count.
    late = archivekeys.segment_keys(sched, 9)
    assert archivekeys.verifies(late, k3.sign(msg.encode()).hex(), msg)
    assert not archivekeys.verifies(late, k2.sign(msg.encode()).hex(), msg)
    assert not archivekeys.verifies(late, "not hex", msg)


def test_a_hand_over_not_signed_by_the_key_in_force_stops_the_chain() -> None:
    k1, k2, k3, planted = (Ed25519PrivateKey.generate() for _ in range(4))
    docs = [_doc((5, handover.EVENT, _handover(k1, k2, k1)),
                 (9, handover.EVENT, _handover(k2, k3, planted)))]  # fmt: skip
    sched = archivekeys.schedule(docs, k1.public_key(), STATION)
    assert sched.problems == [(9, "key hand-over at event 9: not signed by the key in force")]
    assert sched.fingerprints == [stationkey.fingerprint(k.public_key()) for k in (k1, k2)]
    msg = "anchor statement"
    assert not archivekeys.verifies(
        archivekeys.segment_keys(sched, 9), k3.sign(msg.encode()).hex(), msg
    )
