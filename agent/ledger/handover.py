"""Station key rotation: a hand-over record signed by the old key, and following the chain.

`evidence-agent keys rotate` appends one custody event `key.rotated` whose payload carries both
public keys and the old key's signature over (station, old, new fingerprints, new public key).
A verifier that starts from the key pinned at enrolment follows these records in custody order:
checkpoints whose head is before a hand-over are checked with the key in force before it, the
rest with the new one. A hand-over not signed by the key in force is not followed.

The key files change after the ledger commits the hand-over: the new key waits as
`keys/next.ed25519.pem` and the old one is kept as `keys/retired/<fingerprint>.pem` (never
deleted); with `custody.signing_key_file` set, both lie next to that file instead (the public
key stays in `keys/`). `finish_pending` completes a swap a crash interrupted, before the key
is used.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.core.errors import StationKeyError
from agent.core.safefs import fsync_dir
from agent.ledger import custody, stationkey

EVENT = "key.rotated"
NEXT_FILE = "next.ed25519.pem"
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def public_pem(pub: Ed25519PublicKey) -> str:
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def statement(station: str, old: str, new: str, new_pem: str) -> str:
    return custody.canonical(
        {"station": station, "old": old, "new": new, "new_public_key": new_pem}
    )


@dataclass
class Schedule:
    """Which key signs which part of the chain: (first head seq, key), in order."""

    keys: list[tuple[int, Ed25519PublicKey]]
    problems: list[tuple[int, str]] = field(default_factory=list)

    def key_for(self, head_seq: int) -> Ed25519PublicKey:
        chosen = self.keys[0][1]
        for start, pub in self.keys:
            if head_seq >= start:
                chosen = pub
        return chosen

    @property
    def fingerprints(self) -> list[str]:
        return [stationkey.fingerprint(p) for _, p in self.keys]


def first_key(conn: sqlite3.Connection) -> Ed25519PublicKey | None:
    """The key the first hand-over started from (for an UNPINNED verify), or None."""
    row = conn.execute(
        "SELECT payload FROM custody WHERE type = ? ORDER BY seq LIMIT 1", (EVENT,)
    ).fetchone()
    if row is None:
        return None
    try:
        pub = serialization.load_pem_public_key(json.loads(row[0])["old_public_key"].encode())
    except (ValueError, KeyError, TypeError):
        return None
    return pub if isinstance(pub, Ed25519PublicKey) else None


def schedule(conn: sqlite3.Connection, start: Ed25519PublicKey, station: str) -> Schedule:
    """Follow every hand-over in the ledger from `start` (see `follow`)."""
    rows = conn.execute("SELECT seq, payload FROM custody WHERE type = ? ORDER BY seq", (EVENT,))
    return follow(((int(seq), str(payload)) for seq, payload in rows), start, station)


def follow(events: Iterable[tuple[int, str]], start: Ed25519PublicKey, station: str) -> Schedule:
    """Follow the hand-overs (seq, payload), in custody order, from `start`; one not signed by
    the key in force stops it. The one implementation for `verify` (ledger rows) and
    `verify-archive` (archived segments)."""
    sched = Schedule([(0, start)])
    for seq, payload in events:
        current = sched.keys[-1][1]
        msg, new = _follow(current, payload, station)
        if msg:
            sched.problems.append((int(seq), f"key hand-over at event {seq}: {msg}"))
            break
        assert new is not None
        sched.keys.append((int(seq), new))
    return sched


def _follow(
    current: Ed25519PublicKey, payload: str, station: str
) -> tuple[str | None, Ed25519PublicKey | None]:
    try:
        doc = json.loads(payload)
        new = serialization.load_pem_public_key(str(doc["new_public_key"]).encode())
        old_fp, new_fp, sig = str(doc["old"]), str(doc["new"]), str(doc["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable ({exc})", None
    if not isinstance(new, Ed25519PublicKey) or stationkey.fingerprint(new) != new_fp:
        return "the new key does not match its fingerprint", None
    if old_fp != stationkey.fingerprint(current):
        return f"made by key {old_fp}, not the key in force", None
    try:
        current.verify(
            bytes.fromhex(sig), statement(station, old_fp, new_fp, doc["new_public_key"]).encode()
        )
    except (InvalidSignature, ValueError):
        return "not signed by the key in force", None
    return None, new


def record(
    conn: sqlite3.Connection, old: Ed25519PrivateKey, new: Ed25519PrivateKey, station: str
) -> int:
    """Append the hand-over (inside the caller's transaction), signed by the old key."""
    old_fp = stationkey.fingerprint(old.public_key())
    new_fp = stationkey.fingerprint(new.public_key())
    new_pem = public_pem(new.public_key())
    sig = old.sign(statement(station, old_fp, new_fp, new_pem).encode()).hex()
    payload = {
        "old": old_fp,
        "new": new_fp,
        "old_public_key": public_pem(old.public_key()),
        "new_public_key": new_pem,
        "signature": sig,
    }
    return custody.append(conn, EVENT, payload, actor="keys rotate")


def write_next(keys_dir: os.PathLike[str] | str, key: Ed25519PrivateKey) -> None:
    """The new key, waiting next to the private key (`keys_dir`: that file's folder)."""
    path = os.path.join(keys_dir, NEXT_FILE)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, _NEW, 0o600)
    except FileExistsError:
        raise StationKeyError(
            f"{path} exists: a rotation is under way; start the agent (or run `keys show`) to "
            "finish it before rotating again"
        ) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(keys_dir)


def finish_pending(
    keys_dir: os.PathLike[str] | str, conn: sqlite3.Connection, key_file: str | None = None
) -> bool:
    """Complete (or drop) a rotation a crash interrupted; True if the key files changed.
    `key_file`: the private key's path when custody.signing_key_file is set."""
    cur = key_file or os.path.join(keys_dir, stationkey.KEY_FILE)
    nxt = os.path.join(os.path.dirname(cur), NEXT_FILE)
    if not os.path.lexists(nxt):
        return False
    with open(nxt, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise StationKeyError(f"{nxt} is not an ed25519 key")
    fp = stationkey.fingerprint(key.public_key())
    row = conn.execute(
        "SELECT payload FROM custody WHERE type = ? ORDER BY seq DESC LIMIT 1", (EVENT,)
    ).fetchone()
    if row is None or json.loads(row[0]).get("new") != fp:
        os.unlink(nxt)  # the hand-over never committed: this key never signed anything
        fsync_dir(os.path.dirname(nxt))
        return False
    _swap(keys_dir, nxt, key, cur)
    return True


def _swap(keys_dir: os.PathLike[str] | str, nxt: str, key: Ed25519PrivateKey, cur: str) -> None:
    retired = os.path.join(os.path.dirname(cur), "retired")
    os.makedirs(retired, mode=0o700, exist_ok=True)
    if os.path.lexists(cur):
        with open(cur, "rb") as fh:
            old = serialization.load_pem_private_key(fh.read(), password=None)
        if isinstance(old, Ed25519PrivateKey):
            name = stationkey.fingerprint(old.public_key()).replace(":", "-") + ".pem"
            try:
                os.link(cur, os.path.join(retired, name))  # kept, never deleted
            except FileExistsError:
                pass
            fsync_dir(retired)
    os.replace(nxt, cur)
    fsync_dir(os.path.dirname(cur))
    pub_tmp = os.path.join(keys_dir, f".{stationkey.PUB_FILE}.rotate.tmp")
    if os.path.lexists(pub_tmp):
        os.unlink(pub_tmp)  # our own leftover from an interrupted swap
    with os.fdopen(os.open(pub_tmp, _NEW, 0o644), "w") as fh:
        fh.write(public_pem(key.public_key()))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(pub_tmp, os.path.join(keys_dir, stationkey.PUB_FILE))
    fsync_dir(keys_dir)
