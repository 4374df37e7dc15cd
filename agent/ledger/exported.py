"""`recording.exported`: recordings copied out of the station by an export.

The one emitter of the event, for both ways an export runs (the `export` action and the
daemon's gated export). Every exported file is a custody event of its recording, and the
export as a whole is one outbox event, all in the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from agent.ledger import custody, events


def record_exported(
    conn: sqlite3.Connection,
    files: Sequence[tuple[str, Mapping[str, Any]]],
    operator: str,
) -> None:
    """`files` = (recording id, custody payload) per exported file; `operator` exported them."""
    for rid, payload in files:
        custody.append(conn, "recording.exported", dict(payload), recording_id=rid, actor=operator)
    events.emit(conn, "recording.exported", recordings=[rid for rid, _ in files], operator=operator)
