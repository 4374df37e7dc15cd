"""One-time codes for setting a dock console PIN on first use (docs/console.md).

An admin issues a code for an officer through the gate (`operators set-pin OFFICER
--one-time`); the daemon keeps only its argon2id hash, marked as a code, in the officer's
`console_pins` row (in place of a PIN: the officer cannot log in with the code itself), valid
for CODE_HOURS. At the kiosk the officer types officer id, code and a new PIN: a right code,
in time, sets the PIN. A wrong code counts like a wrong PIN (the same back-off and
`console.login_failed` event), so codes cannot be guessed faster than PINs. Issuing
(`console.pin_code_issued`) and redeeming (`console.pin_set` with `one_time: true`) are
custody events in the transaction of the change.
"""

from __future__ import annotations

import secrets
import sqlite3
from datetime import timedelta

from agent.access import pins
from agent.core import clock
from agent.ledger import custody
from agent.ledger.db import Ledger

MARK = "otc:"  # a stored hash with this prefix is a one-time code, never a PIN
CODE_DIGITS = 8
CODE_HOURS = 24.0


def issue(conn: sqlite3.Connection, officer_id: str, actor: str) -> tuple[str, str]:
    """A new code for `officer_id` (inside the caller's transaction): (code, expires, UTC ISO).
    It replaces the officer's PIN or any earlier code and clears the back-off."""
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    now = clock.now()
    pins.store_hash(conn, officer_id, MARK + pins.hash_pin(code), now, actor)
    expires = str(clock.iso(now + timedelta(hours=CODE_HOURS)))
    custody.append(
        conn, "console.pin_code_issued", {"officer_id": officer_id, "expires_at": expires},
        actor=actor,
    )  # fmt: skip
    return code, expires


def _valid(row: sqlite3.Row | None, code: str) -> bool:
    if row is None or not str(row["pin_hash"] or "").startswith(MARK):
        return False
    stored = str(row["pin_hash"])
    issued = clock.parse_iso(row["set_at"])
    if issued is None or clock.now() - issued > timedelta(hours=CODE_HOURS):
        return False
    return pins.check_hash(stored[len(MARK) :], code)


def redeem(
    ledger: Ledger,
    officer_id: str,
    code: str,
    new_pin: str,
    *,
    eligible: bool,
    backoff: tuple[float, float],
) -> pins.LoginResult:
    """Set `new_pin` if `code` is the officer's live one-time code; else count a failure."""
    pins.hash_pin(new_pin)  # the PIN rules first: a bad new PIN costs no try
    now = clock.now()
    row = ledger.one("SELECT * FROM console_pins WHERE officer_id = ?", (officer_id,))
    wait = pins.wait_s(row, now)
    if wait > 0:
        return pins.LoginResult(False, wait, int(row["failures"]) if row else 0)
    good = eligible and _valid(row, code)
    with ledger.tx() as conn:
        if good:  # the same code still there: a second kiosk did not redeem it meanwhile
            again = conn.execute(
                "SELECT pin_hash FROM console_pins WHERE officer_id = ?", (officer_id,)
            ).fetchone()
            good = again is not None and row is not None and again[0] == row["pin_hash"]
        if not good:
            return pins.count_failure(conn, officer_id, now, eligible, backoff)
        pins.set_pin(conn, officer_id, new_pin, actor=f"operator:{officer_id}")
        custody.append(
            conn, "console.login", {"officer_id": officer_id, "one_time": True},
            actor=f"operator:{officer_id}",
        )  # fmt: skip
        return pins.LoginResult(True)
