"""The SM2 co-signature of an archived custody anchor (`crypto.suite = "sm"`).

An anchor shipped from a checkpoint co-signed with the station SM2 key carries
`sm2_signature` (hex DER) and `sm2_public_key` (PEM) beside the Ed25519 signature. The
statement, which the Ed25519 signature covers, names the SM2 key (`sm2_key`, its
fingerprint): the key in the anchor is the station's enrolled SM2 key when its fingerprint is
the one the statement names and, where the ledger is at hand (`verify`), when it is the key of
the station's own checkpoint of that statement. Anchors of "intl" checkpoints, and anchors
shipped before anchors carried SM2, have neither field and are not SM2-checked.
"""

from __future__ import annotations

import binascii
import json
import sqlite3
from typing import Any

from agent.core import sm2sig
from agent.ledger import sm3chain


def carries(data: bytes) -> bool:
    """Whether the anchor document holds an SM2 signature or key."""
    try:
        doc = json.loads(data)
    except ValueError:
        return False
    return isinstance(doc, dict) and ("sm2_signature" in doc or "sm2_public_key" in doc)


def problems(
    data: bytes, st: dict[str, Any], statement: str, conn: sqlite3.Connection | None = None
) -> list[str]:
    """What is wrong with the anchor's SM2 signature (empty: verifies, or there is none)."""
    doc = json.loads(data)
    sig, pem = doc.get("sm2_signature"), doc.get("sm2_public_key")
    if sig is None and pem is None:
        return []
    if "sm2_key" not in st:
        return ["carries an SM2 signature but its statement names no SM2 key"]
    try:
        point = sm2sig.public_from_pem(str(pem))
        der = bytes.fromhex(str(sig))
    except (ValueError, binascii.Error):
        return ["the SM2 public key or SM2 signature of the anchor is unreadable"]
    if sm3chain.sm2_fingerprint(point) != st["sm2_key"]:
        return [f"the SM2 public key is not the station SM2 key the statement names "
                f"({st['sm2_key']})"]  # fmt: skip
    local = _local_key(conn, statement)
    if local is not None and local != point:
        return ["the SM2 public key differs from the one of the station's checkpoint"]
    if not sm2sig.verify(point, statement.encode("utf-8"), der):
        return ["SM2 signature does not verify with the station SM2 key"]
    return []


def _local_key(conn: sqlite3.Connection | None, statement: str) -> bytes | None:
    """The SM2 point of the station's own checkpoint of this statement (None: none known)."""
    if conn is None:
        return None
    row = conn.execute(
        "SELECT sm2_public_key FROM checkpoints WHERE statement = ? AND sm2_public_key"
        " IS NOT NULL ORDER BY seq LIMIT 1",
        (statement,),
    ).fetchone()
    if row is None:
        return None
    try:
        return sm2sig.public_from_pem(row[0])
    except (ValueError, binascii.Error):
        return None  # sm3verify reports an unreadable local key
