"""`verify` against the custody anchors in the archive: every one, oldest version each.

An anchor is a signed checkpoint (head seq, head hash) written once to the archive. Each is
checked with the trusted key (agent.actions.trust) and against the local chain: a chain that
ends before an anchored head was truncated; a local event whose hash differs from the
anchored head hash was rewritten (even if the whole chain and every local checkpoint were
re-signed with the station key). A key with more than one version is flagged: anchors are
write-once, and only the oldest version is believed. An anchor that carries an SM2
co-signature (`crypto.suite = "sm"`) has it checked too (agent.actions.anchorsm2). No local
value (kv) selects or skips anchors; they are listed from the archive.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.actions import anchorsm2
from agent.core.errors import AgentError
from agent.rules import archive_keys


@dataclass
class AnchorFinding:
    subject: str
    message: str


def anchor_folder(station: str) -> str:
    key = archive_keys.checkpoint_key("", station, 0)
    return key.rsplit("/", 1)[0] + "/"


def check_all(
    conn: sqlite3.Connection,
    station: str,
    key_for: Callable[[int], Ed25519PublicKey] | None,
    listing: Callable[[str], list[str]],
    versions: Callable[[str], list[bytes]],
) -> tuple[int, list[AnchorFinding]]:
    """(anchors checked, findings) for every anchor of `station` in the archive."""
    folder = anchor_folder(station)
    try:
        keys = listing(folder)
    except (AgentError, OSError) as exc:
        return 0, [AnchorFinding(folder, f"cannot list the archived anchors: {exc}")]
    head = conn.execute("SELECT MAX(seq) FROM custody").fetchone()[0] or 0
    findings: list[AnchorFinding] = []
    checked = 0
    for relkey in keys:
        try:
            found = versions(relkey)
        except (AgentError, OSError) as exc:
            findings.append(AnchorFinding(relkey, f"cannot read the archived anchor: {exc}"))
            continue
        if not found:
            continue
        if len(found) > 1:
            findings.append(
                AnchorFinding(
                    relkey,
                    f"write-once anchor has {len(found)} versions; only the oldest is believed",
                )  # fmt: skip
            )
        checked += 1
        findings += _check_one(conn, relkey, found[0], key_for, head)
    return checked, findings


def parse_statement(data: bytes) -> dict[str, Any]:
    """The signed statement of an anchor document (raises ValueError/KeyError/TypeError)."""
    return _parse(data)[2]


def _parse(data: bytes) -> tuple[str, str, dict[str, Any]]:
    doc = json.loads(data)
    statement, signature = str(doc["statement"]), str(doc["signature"])
    st = json.loads(statement)
    if not isinstance(st.get("head_seq"), int) or not isinstance(st.get("head_hash"), str):
        raise ValueError("the statement has no head_seq/head_hash")
    return statement, signature, st


def _check_one(
    conn: sqlite3.Connection,
    relkey: str,
    data: bytes,
    key_for: Callable[[int], Ed25519PublicKey] | None,
    head: int,
) -> list[AnchorFinding]:
    try:
        statement, signature, st = _parse(data)
    except (ValueError, KeyError, TypeError) as exc:
        return [AnchorFinding(relkey, f"unreadable anchor: {exc}")]
    out = []
    if key_for is not None:
        pub = key_for(int(st["head_seq"]))
        try:
            pub.verify(bytes.fromhex(signature), statement.encode("utf-8"))
        except (InvalidSignature, ValueError):
            out.append(AnchorFinding(relkey, "signature does not verify with the trusted key"))
    out += [AnchorFinding(relkey, m) for m in anchorsm2.problems(data, st, statement, conn)]
    seq, anchored = int(st["head_seq"]), str(st["head_hash"])
    if not relkey.endswith(f"/{seq:012d}.json"):
        out.append(AnchorFinding(relkey, f"names event {seq}, not the event of its key"))
    if seq == 0:
        return out
    row = conn.execute("SELECT hash, sm3 FROM custody WHERE seq = ?", (seq,)).fetchone()
    if row is not None and "head_sm3" in st and row[1] != st["head_sm3"]:
        out.append(  # crypto.suite = "sm": the anchor also holds the SM3 chain's head
            AnchorFinding(f"event {seq}", f"rewrite: event {seq} in the local chain has SM3 "
                          f"value {row[1]}, the archived anchor {relkey} holds {st['head_sm3']}")
        )  # fmt: skip
    if row is None:
        out.append(
            AnchorFinding(
                f"event {seq}",
                f"truncation: archived anchor {relkey} holds event {seq} "
                f"(hash {anchored}), but the local custody chain ends at event "
                f"{head}: events were deleted",
            )  # fmt: skip
        )
    elif row[0] != anchored:
        out.append(
            AnchorFinding(
                f"event {seq}",
                f"rewrite: event {seq} in the local chain has hash {row[0]}, the "
                f"archived anchor {relkey} holds {anchored}",
            )  # fmt: skip
        )
    local = conn.execute(
        "SELECT statement FROM checkpoints WHERE head_seq = ? ORDER BY seq LIMIT 1", (seq,)
    ).fetchone()
    if local is not None and local[0] != statement:
        out.append(AnchorFinding(relkey, "the local checkpoint differs from its archived copy"))
    return out
