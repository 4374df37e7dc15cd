"""`verify --incremental`: what changed since the newest anchor that still holds.

For the daemon's schedule or a busy station: the newest archived anchor (oldest version, with
the key in force) is checked against the local event it names, recomputed from that row's
content; the chain is walked from there on, and only recordings with custody events after it
are re-hashed. Guards, the ledger/custody cross-check, metadata versions and every local
checkpoint signature are cheap and always checked. What was skipped is reported; the full
`verify` (the default) checks everything.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.actions import anchors
from agent.core.errors import AgentError
from agent.ledger import custody


def base(
    conn: sqlite3.Connection,
    station: str,
    key_for: Callable[[int], Ed25519PublicKey] | None,
    listing: Callable[[str], list[str]],
    versions: Callable[[str], list[bytes]],
) -> tuple[int, int, list[anchors.AnchorFinding]]:
    """(head seq of the newest anchor that holds (0: none), anchors in the archive, findings)."""
    folder = anchors.anchor_folder(station)
    try:
        keys = sorted(listing(folder))
    except (AgentError, OSError) as exc:
        return 0, 0, [anchors.AnchorFinding(folder, f"cannot list the archived anchors: {exc}")]
    if not keys:
        return 0, 0, []
    newest = keys[-1]
    _, findings = anchors.check_all(conn, station, key_for, lambda _f: [newest], versions)
    if findings:
        return 0, len(keys), findings
    data = versions(newest)[0]
    seq = int(anchors.parse_statement(data)["head_seq"])
    row = conn.execute("SELECT * FROM custody WHERE seq = ?", (seq,)).fetchone()
    if row is None or _recomputed(row) != row["hash"]:
        return 0, len(keys), []  # that row itself changed: walk everything (full chain check)
    return seq, len(keys), []


def _recomputed(row: sqlite3.Row) -> str:
    try:
        return custody.event_hash(
            row["seq"], row["at"], row["type"], row["recording_id"], row["actor"],
            row["payload"], row["alg"], row["prev_hash"],
        )  # fmt: skip
    except (ValueError, TypeError):
        return ""


def walk_from(conn: sqlite3.Connection, start: int) -> tuple[int, list[custody.ChainProblem]]:
    """Check the chain after event `start` (which the anchor vouches for)."""
    problems: list[custody.ChainProblem] = []
    row = conn.execute("SELECT hash FROM custody WHERE seq = ?", (start,)).fetchone()
    prev = row[0] if row is not None else custody.GENESIS
    expected, n = start + 1, 0
    for r in conn.execute("SELECT * FROM custody WHERE seq > ? ORDER BY seq", (start,)):
        n += 1
        if r["seq"] != expected:
            problems.append(custody.ChainProblem(r["seq"], f"gap: expected event {expected}"))
        if r["prev_hash"] != prev:
            problems.append(
                custody.ChainProblem(r["seq"], "prev_hash does not match previous event")
            )
        if _recomputed(r) != r["hash"]:
            problems.append(
                custody.ChainProblem(
                    r["seq"], f"event {r['seq']} ({r['type']}) was altered: hash mismatch"
                )
            )
        prev, expected = r["hash"], r["seq"] + 1
    return n, problems


def changed(conn: sqlite3.Connection, start: int) -> set[str]:
    """Recordings with a custody event after `start`."""
    return {
        str(r[0])
        for r in conn.execute(
            "SELECT DISTINCT recording_id FROM custody WHERE seq > ? AND recording_id IS NOT NULL",
            (start,),
        )
    }
