"""`evidence-agent verify-archive --pubkey FILE`: the custody chain from the archive alone.

For a lost or distrusted station disk: no ledger is read. Every custody segment of the station
(oldest version of each) is checked with the pinned key or a key it handed over to; the segments
must run from event 1 without gaps or overlaps, every event's hash is recomputed and chained,
and every archived checkpoint anchor must name an event whose hash it holds and verify with the
key in force at its head.
Under `crypto.suite = "sm"` the SM3 chain is recomputed over the archived events that carry it
(agent.actions.segmentsm3) and checked against the anchors' `head_sm3`, and an anchor's SM2
co-signature must verify with the SM2 key its statement names (agent.actions.anchorsm2).
Key rotations are followed from the pinned key through the hand-over events in the archived
segments themselves (agent.actions.archivekeys): pass the key pinned at enrolment.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.actions import anchors, anchorsm2, archivekeys
from agent.actions.segmentsm3 import Sm3Walk
from agent.archive import segments
from agent.core.errors import AgentError
from agent.ledger import custody, handover, stationkey
from agent.rules import archive_keys


@dataclass
class ArchiveReport:
    segments: int = 0
    events: int = 0
    anchors_checked: int = 0
    sm3_events: int = 0  # archived events whose SM3 chain value was recomputed
    sm2_anchors: int = 0  # anchors whose SM2 co-signature was checked
    keys: list[str] = field(default_factory=list)  # fingerprints followed from the pinned key
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def add(self, subject: str, message: str) -> None:
        self.problems.append({"subject": subject, "message": message})


def check(store: Any, station: str, pub: Ed25519PublicKey) -> ArchiveReport:
    report = ArchiveReport()
    folder = archive_keys.segment_key("", station, 0, 0).rsplit("/", 1)[0] + "/"
    try:
        keys = sorted(store.list_documents(folder))
    except (AgentError, OSError) as exc:
        report.add(folder, f"cannot list the custody segments: {exc}")
        return report
    docs = _read_segments(store, keys, report)
    sched = archivekeys.schedule((d for _, d in docs), pub, station)
    report.keys = sched.fingerprints
    report.problems += [{"subject": f"event {s}", "message": m} for s, m in sched.problems]
    hashes: dict[int, str] = {}
    prev, expected = custody.GENESIS, 1
    sm3 = Sm3Walk()
    for relkey, doc in docs:
        report.segments += 1
        prev, expected = _segment(doc, relkey, station, sched, (prev, expected), hashes, report)
        for e in doc.get("events") or []:
            problem = sm3.step(e, relkey)
            if problem:
                report.add(f"event {e['seq']}", problem)
    report.events, report.sm3_events = len(hashes), sm3.events
    _anchors(store, station, sched, (hashes, sm3), report)
    return report


def _read_segments(
    store: Any, keys: list[str], report: ArchiveReport
) -> list[tuple[str, dict[str, Any]]]:
    """The oldest version of each segment, in key order (a second version is flagged)."""
    docs = []
    for relkey in keys:
        versions = store.document_versions(relkey)
        if len(versions) > 1:
            report.add(relkey, f"write-once segment has {len(versions)} versions")
        try:
            doc = json.loads(versions[0])
        except (ValueError, IndexError) as exc:
            report.add(relkey, f"unreadable segment: {exc}")
            continue
        docs.append((relkey, doc))
    return docs


def _segment(
    doc: dict[str, Any],
    relkey: str,
    station: str,
    sched: handover.Schedule,
    at: tuple[str, int],
    hashes: dict[int, str],
    report: ArchiveReport,
) -> tuple[str, int]:
    prev, expected = at
    events = doc.get("events") or []
    if not events:
        report.add(relkey, "empty segment")
        return prev, expected
    last = events[-1]
    st = segments.statement(station, events[0]["seq"], last["seq"], last["hash"], last.get("sm3"))
    signers = archivekeys.segment_keys(sched, int(last["seq"]))
    if not archivekeys.verifies(signers, doc.get("signature"), st):
        report.add(relkey, "segment signature does not verify with the pinned key or a key it "
                   "handed over to")  # fmt: skip
    for e in events:
        seq = int(e["seq"])
        if seq != expected:
            report.add(f"event {expected}", f"missing from the archive (next is {seq}, {relkey})")
        if e["prev_hash"] != prev:
            report.add(f"event {seq}", "prev_hash does not match the previous archived event")
        h = custody.event_hash(
            seq, e["at"], e["type"], e["recording_id"], e["actor"], e["payload"], e["alg"],
            e["prev_hash"],
        )  # fmt: skip
        if h != e["hash"]:
            report.add(f"event {seq}", f"archived event {seq} does not match its hash")
        hashes[seq] = e["hash"]
        prev, expected = e["hash"], seq + 1
    return prev, expected


def _anchors(
    store: Any,
    station: str,
    sched: handover.Schedule,
    archived: tuple[dict[int, str], Sm3Walk],
    r: ArchiveReport,
) -> None:
    hashes, sm3 = archived
    folder = anchors.anchor_folder(station)
    try:
        keys = store.list_documents(folder)
    except (AgentError, OSError) as exc:
        r.add(folder, f"cannot list the archived anchors: {exc}")
        return
    for relkey in keys:
        versions = store.document_versions(relkey)
        if not versions:
            continue
        r.anchors_checked += 1
        try:
            st = anchors.parse_statement(versions[0])
        except (ValueError, KeyError, TypeError) as exc:
            r.add(relkey, f"unreadable anchor: {exc}")
            continue
        _signatures(versions[0], st, relkey, sched.key_for(int(st["head_seq"])), r)
        problem = sm3.anchor_problem(st, relkey)
        if problem:
            r.add(f"event {st['head_seq']}", problem)
        seq = int(st["head_seq"])
        if seq and seq not in hashes:
            r.add(f"event {seq}", f"anchored in {relkey} but in no archived segment")
        elif seq and hashes[seq] != st["head_hash"]:
            r.add(f"event {seq}", f"archived segment differs from anchor {relkey}")


def _signatures(
    data: bytes, st: dict[str, Any], relkey: str, pub: Ed25519PublicKey, r: ArchiveReport
) -> None:
    """The anchor's Ed25519 signature with the key in force at its head (`pub`), and its SM2
    co-signature with the SM2 key the signed statement names."""
    doc = json.loads(data)
    statement = str(doc["statement"])
    try:
        pub.verify(bytes.fromhex(str(doc.get("signature"))), statement.encode("utf-8"))
    except (InvalidSignature, ValueError):
        r.add(relkey, "anchor signature does not verify with the key in force at its head "
              f"(fingerprint {stationkey.fingerprint(pub)})")  # fmt: skip
    if anchorsm2.carries(data):
        r.sm2_anchors += 1
        r.problems += [{"subject": relkey, "message": m}
                       for m in anchorsm2.problems(data, st, statement)]  # fmt: skip
