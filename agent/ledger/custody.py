"""The custody log: an append-only, hash-chained list of everything done to evidence.

Each event's hash is SHA-256 over canonical JSON of the event including the previous hash,
so editing, removing or reordering a row breaks the chain from there on. The station signs
checkpoints (head seq + head hash) with its ed25519 key; those also leave the station
(MQTT retained, WORM archive) so a rewritten database is caught against an outside anchor.
Events are appended inside the transaction of the change they record. Under
`crypto.suite = "sm"` events also carry an SM3 chain value and checkpoints an SM2 signature
(agent.ledger.sm3chain, checked by agent.ledger.sm3verify).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.core import clock, sm2sig
from agent.ledger import sm3chain
from agent.ledger.stationkey import fingerprint

GENESIS = "0" * 64
ALG = "sha256"


# One canonical JSON for every hashed or signed body: the SHA-256 and SM3 chains, checkpoints,
# hand-overs, manifests (custody.canonical is what callers import).
canonical = sm3chain.canonical


def event_hash(
    seq: int,
    at: str,
    type_: str,
    recording_id: str | None,
    actor: str,
    payload: str,
    alg: str,
    prev_hash: str,
) -> str:
    body = sm3chain.event_body(seq, at, type_, recording_id, actor, payload, alg, prev_hash)
    return hashlib.sha256(body).hexdigest()


SM3_SCHEMA = 19  # migration 0019 added custody.sm3 and the checkpoints' SM2 columns


def _sm_schema(conn: sqlite3.Connection) -> bool:
    """False while an older migration (0008) appends, before 0019 added the columns."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0]) >= SM3_SCHEMA


def _head(conn: sqlite3.Connection, sm: bool = True) -> tuple[int, str, str | None] | None:
    # `seq > 0`: a rowid range, so the plan is a SEARCH from the end (O(1)), never a SCAN.
    row = conn.execute(
        f"SELECT seq, hash, {'sm3' if sm else 'NULL'} FROM custody"
        " WHERE seq > 0 ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), row[2])


def append(
    conn: sqlite3.Connection,
    type_: str,
    payload: dict[str, Any],
    *,
    recording_id: str | None = None,
    actor: str = "agent",
) -> int:
    """Append one event; the caller's transaction makes it atomic with the change itself."""
    if not conn.in_transaction:
        raise RuntimeError("custody.append must run inside a ledger transaction")
    sm = _sm_schema(conn)
    head = _head(conn, sm)
    suite = getattr(conn, "suite", None) if sm else None
    if type_ != sm3chain.SUITE_EVENT and sm3chain.switch_needed(suite, head and head[2]):
        # The first write under another crypto.suite records the switch, in this transaction.
        append(conn, sm3chain.SUITE_EVENT, sm3chain.switch_payload(str(suite)))
        head = _head(conn)
    seq = 1 if head is None else head[0] + 1
    prev = GENESIS if head is None else head[1]
    at = clock.iso(clock.now()) or ""
    body = canonical(payload)
    h = event_hash(seq, at, type_, recording_id, actor, body, ALG, prev)
    prev_sm3 = None if head is None else head[2]
    sm3 = None
    if sm and sm3chain.carries(type_, payload, prev_sm3):
        sm3 = sm3chain.value(seq, at, type_, recording_id, actor, body, prev_sm3)
    row = (seq, at, type_, recording_id, actor, body, ALG, prev, h)
    columns = "seq, at, type, recording_id, actor, payload, alg, prev_hash, hash"
    if sm:
        conn.execute(f"INSERT INTO custody({columns}, sm3) VALUES(?,?,?,?,?,?,?,?,?,?)",
                     (*row, sm3))  # fmt: skip
    else:
        conn.execute(f"INSERT INTO custody({columns}) VALUES(?,?,?,?,?,?,?,?,?)", row)
    return seq


@dataclass
class ChainProblem:
    seq: int
    message: str


def verify_chain(conn: sqlite3.Connection) -> tuple[int, list[ChainProblem]]:
    """Walk the whole chain; returns (events checked, problems)."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    expected_seq = 1
    n = 0
    for row in conn.execute("SELECT * FROM custody ORDER BY seq"):
        n += 1
        if row["seq"] != expected_seq:
            problems.append(ChainProblem(row["seq"], f"gap: expected event {expected_seq}"))
        if row["prev_hash"] != prev:
            problems.append(ChainProblem(row["seq"], "prev_hash does not match previous event"))
        try:
            h = event_hash(
                row["seq"],
                row["at"],
                row["type"],
                row["recording_id"],
                row["actor"],
                row["payload"],
                row["alg"],
                row["prev_hash"],
            )
        except (ValueError, TypeError) as exc:
            problems.append(ChainProblem(row["seq"], f"unreadable payload: {exc}"))
            h = ""
        if h != row["hash"]:
            problems.append(
                ChainProblem(
                    row["seq"], f"event {row['seq']} ({row['type']}) was altered: hash mismatch"
                )
            )
        prev = row["hash"]
        expected_seq = row["seq"] + 1
    return n, problems


def checkpoint(
    conn: sqlite3.Connection,
    key: Ed25519PrivateKey,
    station: str,
    sm2: tuple[bytes, bytes] | None = None,
) -> dict[str, Any]:
    """Sign the current head. Returns the checkpoint as published (statement + signature).

    With `sm2` (the station SM2 key pair, crypto.suite = "sm") the statement also names the
    SM2 key and the head's SM3 value, and is signed with SM2 as well as with Ed25519."""
    head = conn.execute(
        "SELECT seq, hash, sm3 FROM custody WHERE seq > 0 ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    head_seq, head_hash = (0, GENESIS) if head is None else (head[0], head[1])
    last = conn.execute("SELECT head_seq FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
    at = clock.iso(clock.now()) or ""
    fp = fingerprint(key.public_key())
    fields = {"station": station, "head_seq": head_seq, "head_hash": head_hash, "at": at,
              "alg": ALG, "key": fp}  # fmt: skip
    if head is not None and head[2] is not None:
        fields["head_sm3"] = head[2]
    if sm2 is not None:
        fields["sm2_key"] = sm3chain.sm2_fingerprint(sm2[1])
    statement = canonical(fields)
    sig = key.sign(statement.encode("utf-8")).hex()
    sm2_sig = sm2sig.sign(sm2[0], sm2[1], statement.encode("utf-8")).hex() if sm2 else None
    sm2_pem = sm2sig.public_pem(sm2[1]) if sm2 else None
    if last is None or last[0] != head_seq:
        conn.execute(
            "INSERT INTO checkpoints(at, head_seq, head_hash, statement, signature,"
            " key_fingerprint, sm2_signature, sm2_public_key) VALUES(?,?,?,?,?,?,?,?)",
            (at, head_seq, head_hash, statement, sig, fp, sm2_sig, sm2_pem),
        )
    out = {"statement": json.loads(statement), "signature": sig, "key_fingerprint": fp}
    return out | ({"sm2_signature": sm2_sig, "sm2_public_key": sm2_pem} if sm2 else {})


def latest_checkpoint(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    out = {
        "statement": json.loads(row["statement"]),
        "signature": row["signature"],
        "key_fingerprint": row["key_fingerprint"],
    }
    if row["sm2_signature"] is not None:
        out |= {"sm2_signature": row["sm2_signature"], "sm2_public_key": row["sm2_public_key"]}
    return out


def verify_checkpoint(
    conn: sqlite3.Connection, pub: Ed25519PublicKey, statement: str, signature: str
) -> str | None:
    """Check one checkpoint against the key and the chain; returns a problem or None."""
    try:
        pub.verify(bytes.fromhex(signature), statement.encode("utf-8"))
    except (InvalidSignature, ValueError):
        return "signature does not verify with the station key"
    st = json.loads(statement)
    row = conn.execute("SELECT hash FROM custody WHERE seq = ?", (st["head_seq"],)).fetchone()
    if st["head_seq"] == 0:
        return None
    if row is None:
        return f"checkpoint names event {st['head_seq']}, which is missing"
    if row[0] != st["head_hash"]:
        return f"checkpoint hash for event {st['head_seq']} does not match the chain"
    return None


def verify_checkpoints(conn: sqlite3.Connection, pub: Ed25519PublicKey) -> list[ChainProblem]:
    problems = []
    for row in conn.execute("SELECT * FROM checkpoints ORDER BY seq"):
        msg = verify_checkpoint(conn, pub, row["statement"], row["signature"])
        if msg:
            problems.append(ChainProblem(row["head_seq"], f"checkpoint {row['seq']}: {msg}"))
    return problems
