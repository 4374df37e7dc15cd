"""The `kv` table: small named station values (counters, marks, last errors, cached digests).

The one writer of `kv`: every module sets or clears its keys through `put` / `remove` (the
ledger's `set_kv` is this `put`), always inside the caller's transaction so a value changes
together with the fact it describes. Keys are constants in the calling code, never built from
untrusted input.
"""

from __future__ import annotations

import sqlite3


def get(conn: sqlite3.Connection, key: str) -> str | None:
    """The value stored under `key`, or None."""
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def put(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Store `value` under `key` (insert or replace), in the caller's transaction."""
    conn.execute(
        "INSERT INTO kv(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def remove(conn: sqlite3.Connection, key: str) -> None:
    """Forget `key` (nothing happens when it is not set), in the caller's transaction."""
    conn.execute("DELETE FROM kv WHERE key = ?", (key,))
