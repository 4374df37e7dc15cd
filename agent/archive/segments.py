"""Custody segments: the custody log itself leaves the station, signed and write-once.

Each segment holds consecutive custody events (as stored, hash-chained) and the station's
signature over (station, first, last, last event hash); segments go to
`_custody/<station>/segments/<first>-<last>.json` next to the checkpoints, so a lost station
disk loses no history: `evidence-agent verify-archive` checks the chain from the archive alone.
Once the station has an SM3 custody chain (`crypto.suite = "sm"`), each event carries its
`sm3` chain value (null outside the chain); segments of a station that never used "sm", and
segments shipped by earlier versions, have no `sm3` key. The signed statement names the last
event's SM3 value (`last_sm3`) when it has one.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.archive.store import Store, lock_for
from agent.core.errors import AnchorConflictError
from agent.ledger import custody, stationkey
from agent.rules import archive_keys
from agent.station.context import Context

logger = logging.getLogger(__name__)

SCHEMA = "evidence-agent/custody-segment/1"
MAX_EVENTS = 1000
COLUMNS = (
    "seq", "at", "type", "recording_id", "actor", "payload", "alg", "prev_hash", "hash", "sm3",
)  # fmt: skip


def statement(
    station: str, first: int, last: int, last_hash: str, last_sm3: str | None = None
) -> str:
    fields: dict[str, Any] = {"station": station, "first": first, "last": last,
                              "last_hash": last_hash}  # fmt: skip
    if last_sm3 is not None:  # crypto.suite = "sm": the Ed25519 signature covers the SM3 head
        fields["last_sm3"] = last_sm3
    return custody.canonical(fields)


def ship_segments(ctx: Context, store: Store, body: Any) -> int:
    """Ship custody events not yet shipped, up to MAX_EVENTS a segment; `body` turns a
    document into bytes (agent.archive.docs.anchor_bytes)."""
    shipped = 0
    while True:
        done = int(ctx.ledger.get_kv("archive.segment_shipped") or 0)
        rows = ctx.ledger.query(
            f"SELECT {', '.join(COLUMNS)} FROM custody WHERE seq > ?"
            " AND seq <= (SELECT COALESCE(MAX(head_seq), 0) FROM checkpoints)"  # the cadence
            " ORDER BY seq LIMIT ?",
            (done, MAX_EVENTS),
        )
        if not rows:
            return shipped
        first, last = int(rows[0]["seq"]), int(rows[-1]["seq"])
        cols = COLUMNS if _with_sm3(ctx, rows, first) else COLUMNS[:-1]
        st = statement(ctx.station_id, first, last, str(rows[-1]["hash"]), rows[-1]["sm3"])
        doc = {
            "schema": SCHEMA,
            "station": ctx.station_id,
            "first": first,
            "last": last,
            "statement": st,
            "signature": ctx.key.sign(st.encode("utf-8")).hex(),
            "key_fingerprint": stationkey.fingerprint(ctx.key.public_key()),
            "events": [{c: r[c] for c in cols} for r in rows],
        }
        relkey = archive_keys.segment_key("", ctx.station_id, first, last)
        conflict = None
        try:
            store.put_once(relkey, body(doc), lock_for(ctx.cfg, {}), "application/json")
        except AnchorConflictError as exc:
            logger.error("custody segment %s not written: %s", relkey, exc)
            conflict = str(exc)
        with ctx.ledger.tx() as conn:
            if conflict:
                custody.append(conn, "anchor.conflict", {"key": relkey, "reason": conflict})
            ctx.ledger.set_kv(conn, "archive.segment_shipped", str(last))
        shipped += 1


def _with_sm3(ctx: Context, rows: list[Any], first: int) -> bool:
    """Whether the segment carries `sm3`: the station has an SM3 chain by its last event."""
    if any(r["sm3"] is not None for r in rows):
        return True
    sql = "SELECT 1 FROM custody WHERE sm3 IS NOT NULL AND seq < ? LIMIT 1"
    return ctx.ledger.one(sql, (first,)) is not None
