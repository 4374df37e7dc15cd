"""`verify` under 国密: the SM3 custody chain and the SM2 signatures of checkpoints.

Checked whenever the ledger holds them, whatever crypto.suite says now: an event that should
carry an SM3 value (agent.ledger.sm3chain) and does not, or carries one it should not, or
whose value is not SM3 over its canonical bytes, is a problem naming the event; a checkpoint
whose statement names an SM2 key must carry an SM2 signature by that key that verifies, and
its `head_sm3` must be the SM3 value of the event it names. The SM2 key is vouched for by the
Ed25519 signature over the same statement (which names its fingerprint).
"""

from __future__ import annotations

import binascii
import json
import sqlite3
from dataclasses import dataclass, field

from agent.core import sm2sig
from agent.ledger import sm3chain
from agent.ledger.custody import ChainProblem


@dataclass
class Sm3Report:
    events: int = 0  # events with an SM3 value that were checked
    first: int | None = None  # the first event of the SM3 chain (None: no SM3 chain)
    sm2_checkpoints: int = 0
    problems: list[ChainProblem] = field(default_factory=list)  # of the SM3 chain
    checkpoint_problems: list[ChainProblem] = field(default_factory=list)  # SM2, SM3 heads


def walk(conn: sqlite3.Connection, start: int = 0) -> Sm3Report:
    """Check the SM3 chain after event `start` (0: all of it)."""
    report = Sm3Report()
    row = conn.execute("SELECT sm3 FROM custody WHERE seq = ?", (start,)).fetchone()
    prev: str | None = None if row is None else row[0]
    for r in conn.execute(
        "SELECT seq, at, type, recording_id, actor, payload, sm3 FROM custody WHERE seq > ?"
        " ORDER BY seq",
        (start,),
    ):
        problem = _check_event(r, prev, report)
        if problem:
            report.problems.append(ChainProblem(r["seq"], problem))
        prev = r["sm3"]
    return report


def _check_event(r: sqlite3.Row, prev: str | None, report: Sm3Report) -> str | None:
    seq, type_ = r["seq"], r["type"]
    try:
        payload = json.loads(r["payload"]) if type_ == sm3chain.SUITE_EVENT else {}
    except ValueError:
        payload = {}
    wanted = sm3chain.carries(type_, payload if isinstance(payload, dict) else {}, prev)
    if r["sm3"] is None:
        if wanted:
            return f"event {seq} ({type_}) has no SM3 value inside the SM3 chain (it was removed)"
        return None
    if not wanted:
        return f"event {seq} ({type_}) carries an SM3 value outside the SM3 chain"
    report.events += 1
    if report.first is None:
        report.first = seq
    try:
        v = sm3chain.value(
            seq, r["at"], type_, r["recording_id"], r["actor"], r["payload"], prev
        )  # fmt: skip
    except (ValueError, TypeError):
        v = ""
    if v != r["sm3"]:
        return f"event {seq} ({type_}) was altered: SM3 mismatch"
    return None


def checkpoint_problems(conn: sqlite3.Connection, report: Sm3Report, start: int = 0) -> None:
    """SM2 signature and SM3 head of every checkpoint (at or after event `start`) that names
    an SM2 key. About 50 ms each in pure Python: `verify --incremental` checks only the new."""
    for row in conn.execute("SELECT * FROM checkpoints WHERE head_seq >= ? ORDER BY seq", (start,)):
        msg = _check_checkpoint(conn, row, report)
        if msg:
            problem = ChainProblem(row["head_seq"], f"checkpoint {row['seq']}: {msg}")
            report.checkpoint_problems.append(problem)


def _check_checkpoint(conn: sqlite3.Connection, row: sqlite3.Row, report: Sm3Report) -> str | None:
    try:
        st = json.loads(row["statement"])
    except ValueError:
        return None  # the Ed25519 check reports an unreadable statement
    head = conn.execute("SELECT sm3 FROM custody WHERE seq = ?", (st.get("head_seq"),)).fetchone()
    if "head_sm3" in st and (head is None or head[0] != st["head_sm3"]):
        return f"SM3 head for event {st.get('head_seq')} does not match the chain"
    if "sm2_key" not in st:
        return None if row["sm2_signature"] is None else "SM2 signature without an SM2 key"
    if row["sm2_signature"] is None or row["sm2_public_key"] is None:
        return "the statement names an SM2 key but the SM2 signature is missing"
    try:
        point = sm2sig.public_from_pem(row["sm2_public_key"])
        der = bytes.fromhex(row["sm2_signature"])
    except (ValueError, binascii.Error):
        return "the SM2 public key or signature is unreadable"
    if sm3chain.sm2_fingerprint(point) != st["sm2_key"]:
        return f"the SM2 public key is not the key the statement names ({st['sm2_key']})"
    if not sm2sig.verify(point, row["statement"].encode("utf-8"), der):
        return "SM2 signature does not verify with the station SM2 key"
    report.sm2_checkpoints += 1
    return None


def run(conn: sqlite3.Connection, start: int = 0) -> Sm3Report:
    """The SM3 chain after `start` and every checkpoint's SM2 signature."""
    report = walk(conn, start)
    checkpoint_problems(conn, report, start)
    return report
