"""Dock console PINs: argon2id hashes per officer id, the wrong-PIN back-off, custody events.

The daemon alone reads and writes them (table `console_pins`, migration 0015); the console
process only forwards what the officer typed, over the gate. A PIN is hashed with argon2id
and its own random salt (argon2-cffi's encoded string carries salt and parameters). A wrong
PIN doubles the officer's wait before the next try (`console.pin_backoff_seconds`, capped by
`console.pin_backoff_max_seconds`): never a hard lock-out that anyone at the kiosk could use
to lock an officer out; an admin clears it (`evidence-agent operators unlock`). Every set,
unlock, failed and successful login is a custody event.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.core import clock
from agent.core.errors import AgentError
from agent.ledger import custody
from agent.ledger.db import Ledger

PIN = re.compile(r"^[0-9]{4,12}$")


class PinError(AgentError):
    """A PIN that does not meet the rules (4-12 digits), or no such officer."""

    exit_code = 65  # EX_DATAERR


@dataclass
class LoginResult:
    ok: bool
    retry_after_s: float = 0.0  # > 0: wait this long before the next try
    failures: int = 0


def _hasher():  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher  # argon2id by default, 16-byte random salt per hash

    return PasswordHasher()


def hash_pin(pin: str) -> str:
    if not PIN.match(pin):
        raise PinError("a PIN is 4 to 12 digits")
    return str(_hasher().hash(pin))


def check_hash(encoded: str, pin: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(encoded, pin))
    except (VerificationError, InvalidHashError):
        return False


def set_pin(conn: sqlite3.Connection, officer_id: str, pin: str, actor: str) -> None:
    """Store a new PIN hash (inside the caller's transaction) and clear the back-off."""
    store_hash(conn, officer_id, hash_pin(pin), clock.now(), actor)
    custody.append(conn, "console.pin_set", {"officer_id": officer_id}, actor=actor)


def store_hash(
    conn: sqlite3.Connection, officer_id: str, encoded: str, at: datetime, actor: str
) -> None:
    """Put `encoded` (a PIN's hash, or a one-time code's marked hash: `agent.access.pincodes`)
    in the officer's row, set at `at` by `actor`, and clear the back-off."""
    conn.execute(
        "INSERT INTO console_pins(officer_id, pin_hash, set_at, set_by, failures) "
        "VALUES(?,?,?,?,0) ON CONFLICT(officer_id) DO UPDATE SET pin_hash = excluded.pin_hash,"
        " set_at = excluded.set_at, set_by = excluded.set_by, failures = 0, retry_after = NULL",
        (officer_id, encoded, clock.iso(at), actor),
    )


def unlock(conn: sqlite3.Connection, officer_id: str, actor: str) -> int:
    """Clear an officer's back-off (inside the caller's transaction); returns the failures."""
    row = conn.execute(
        "SELECT failures FROM console_pins WHERE officer_id = ?", (officer_id,)
    ).fetchone()
    failures = int(row[0]) if row else 0
    conn.execute(
        "UPDATE console_pins SET failures = 0, retry_after = NULL WHERE officer_id = ?",
        (officer_id,),
    )
    custody.append(
        conn, "console.unlocked", {"officer_id": officer_id, "failures": failures}, actor=actor
    )
    return failures


def wait_s(row: sqlite3.Row | None, now: datetime) -> float:
    """Seconds the officer of `row` must still wait before the next try (0: none)."""
    until = clock.parse_iso(row["retry_after"]) if row is not None else None
    return max(0.0, (until - now).total_seconds()) if until else 0.0


def login(
    ledger: Ledger,
    officer_id: str,
    pin: str,
    *,
    register_hash: str,
    eligible: bool,
    backoff: tuple[float, float],
) -> LoginResult:
    """Check `pin` for `officer_id`; a wrong one is counted and backs off, in custody.

    `register_hash` is the register's `pin_hash` column (used when no PIN was set through the
    gate); `eligible` is False for an officer who is not active in the register.
    """
    now = clock.now()
    row = ledger.one("SELECT * FROM console_pins WHERE officer_id = ?", (officer_id,))
    wait = wait_s(row, now)
    if wait > 0:  # not counted again: a kiosk user cannot stretch the wait by hammering
        return LoginResult(False, wait, int(row["failures"]) if row else 0)
    encoded = (row["pin_hash"] if row is not None else None) or register_hash
    good = eligible and bool(encoded) and check_hash(encoded, pin)
    with ledger.tx() as conn:
        if good:
            conn.execute(
                "UPDATE console_pins SET failures = 0, retry_after = NULL WHERE officer_id = ?",
                (officer_id,),
            )
            custody.append(
                conn, "console.login", {"officer_id": officer_id}, actor=f"operator:{officer_id}"
            )
            return LoginResult(True)
        return count_failure(conn, officer_id, now, eligible, backoff)


def count_failure(
    conn: sqlite3.Connection,
    officer_id: str,
    now: datetime,
    eligible: bool,
    backoff: tuple[float, float],
) -> LoginResult:
    """A wrong PIN or code (inside the caller's transaction): back off, in custody."""
    row = conn.execute(
        "SELECT failures FROM console_pins WHERE officer_id = ?", (officer_id,)
    ).fetchone()
    failures = (int(row[0]) if row else 0) + 1
    base, cap = backoff
    wait = min(cap, base * 2 ** (failures - 1))
    until = clock.iso(now + timedelta(seconds=wait))
    if eligible:
        conn.execute(
            "INSERT INTO console_pins(officer_id, failures, last_failure_at, retry_after) "
            "VALUES(?,?,?,?) ON CONFLICT(officer_id) DO UPDATE SET failures = excluded.failures,"
            " last_failure_at = excluded.last_failure_at, retry_after = excluded.retry_after",
            (officer_id, failures, clock.iso(now), until),
        )
    custody.append(
        conn,
        "console.login_failed",
        {
            "officer_id": officer_id,
            "failures": failures,
            "retry_after_s": wait if eligible else 0,
            "reason": "wrong PIN" if eligible else "not an active operator in the register",
        },
        actor="console",
    )
    return LoginResult(False, wait if eligible else 0.0, failures)
