"""`evidence-agent audit`: who did what, read from the custody log (调阅监督).

`collect()` answers a query (by recording, operator, period, kind) with the events, the
operators' names and 执法证号 from the register as last loaded, times in station time with
their offset, and for one recording the signed checkpoint that covers its last event.
Supervisors read it through the daemon's gate; the data dir's owner and root read it
directly. Either way the reading itself is a custody event.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent.access.gate import known_operators
from agent.actions.audit_text import HEADINGS, sentence
from agent.core import clock
from agent.core.errors import AgentError
from agent.ledger import custody
from agent.ledger import recordings as rec
from agent.station.context import Context

MAX_EVENTS = 100_000


class AuditError(AgentError):
    exit_code = 64


@dataclass
class Query:
    recording: str | None = None
    operator: str | None = None
    since: str | None = None  # ISO with offset
    until: str | None = None
    kind: str | None = None  # an event code or a prefix ending in "." (recording.)
    limit: int = 1000

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Query:
        q = cls()
        for key in ("recording", "operator", "since", "until", "kind"):
            # "operator" in a gate request is the (checked) typed identity; the filter is by_.
            value = params.get("by_operator" if key == "operator" else key)
            if value is not None and (not isinstance(value, str) or len(value) > 100):
                raise AuditError(f"{key}: expected text")
            setattr(q, key, value or None)
        limit = params.get("limit", 1000)
        if not isinstance(limit, int) or not 0 < limit <= MAX_EVENTS:
            raise AuditError(f"limit: expected 1..{MAX_EVENTS}")
        q.limit = limit
        for key in ("since", "until"):
            if getattr(q, key) and clock.parse_iso(getattr(q, key)) is None:
                raise AuditError(f"{key}: {getattr(q, key)!r} is not an ISO time with offset")
        return q

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _where(q: Query) -> tuple[str, list[Any]]:
    sql, args = ["1=1"], []
    if q.recording:
        sql.append(
            "(recording_id = ? OR EXISTS (SELECT 1 FROM json_each(payload, '$.recordings')"
            " WHERE value = ?))"
        )
        args += [q.recording, q.recording]
    if q.operator:
        sql.append(
            "(actor IN (?, ?) OR json_extract(payload, '$.operator') = ?"
            " OR (type = 'access.granted' AND json_extract(payload, '$.login') = ?))"
        )
        args += [q.operator, f"operator:{q.operator}", q.operator, q.operator]
    if q.kind:
        if q.kind.endswith("."):
            sql.append("type LIKE ?")
            args.append(q.kind.replace("%", "") + "%")
        else:
            sql.append("type = ?")
            args.append(q.kind)
    return " AND ".join(sql), args


def _in_period(at: str, lo: datetime | None, hi: datetime | None) -> bool:
    when = clock.parse_iso(at)
    if when is None:
        return True
    return (lo is None or when >= lo) and (hi is None or when < hi)


def _operator_of(row: sqlite3.Row, payload: dict[str, Any], ops: dict[str, Any]) -> str | None:
    if isinstance(payload.get("operator"), str):
        return str(payload["operator"])
    actor = str(row["actor"])
    if actor.startswith("operator:"):
        return actor.split(":", 1)[1]
    return actor if actor in ops else None  # tagging records the bare officer id


def collect(ctx: Context, conn: sqlite3.Connection, q: Query) -> dict[str, Any]:
    """The events matching `q` and what a reader needs beside them (JSON-able)."""
    tz = ZoneInfo(ctx.cfg.station.timezone)
    ops = known_operators(ctx.ledger)
    where, args = _where(q)
    lo, hi = clock.parse_iso(q.since), clock.parse_iso(q.until)
    events = []
    for row in conn.execute(f"SELECT * FROM custody WHERE {where} ORDER BY seq", args):
        if not _in_period(row["at"], lo, hi):
            continue
        payload = json.loads(row["payload"])
        who = _operator_of(row, payload, ops)
        info = ops.get(who or "", {})
        when = clock.parse_iso(row["at"])
        events.append(
            {
                "seq": row["seq"],
                "at": row["at"],
                "at_station": when.astimezone(tz).isoformat(timespec="seconds") if when else None,
                "type": row["type"],
                "recording_id": row["recording_id"],
                "actor": row["actor"],
                "operator": who,
                "operator_name": info.get("name"),
                "cert_no": info.get("cert_no"),
                "via": payload.get("via"),
                "payload": payload,
                "hash": row["hash"],
                "prev_hash": row["prev_hash"],
            }
        )
        if len(events) >= q.limit:
            break
    doc: dict[str, Any] = {"query": q.as_dict(), "station": ctx.station_id, "events": events}
    if q.recording:
        doc["recording"] = _recording(conn, q.recording)
        # Reading the audit is itself recorded; the checkpoint must cover what was read.
        last = max((e["seq"] for e in events if not _is_read(e)), default=0)
        doc["checkpoint"] = _covering(conn, last)
    return doc


def _is_read(event: dict[str, Any]) -> bool:
    return event["type"] == "audit.read" or (
        event["type"] == "access.granted" and event["payload"].get("action") == "audit"
    )


def _recording(conn: sqlite3.Connection, rid: str) -> dict[str, Any] | None:
    row = rec.get(conn, rid)
    if row is None:
        return None
    keys = ("id", "serial", "officer_id", "unit_id", "source_path", "start", "end", "state")
    doc = {k: row[k] for k in keys}
    doc.update(sha256=row["sha256"], size=row["size"], archive_ref=row["archive_ref"])
    return doc


def _covering(conn: sqlite3.Connection, seq: int) -> dict[str, Any] | None:
    """The first signed checkpoint whose head is at or after `seq` (it covers that event)."""
    row = conn.execute(
        "SELECT * FROM checkpoints WHERE head_seq >= ? ORDER BY seq LIMIT 1", (seq,)
    ).fetchone()
    if row is None:
        return None
    return {
        "statement": json.loads(row["statement"]),
        "signature": row["signature"],
        "key_fingerprint": row["key_fingerprint"],
    }


def record_read(ctx: Context, actor: str, q: Query, via: str) -> None:
    """A direct read (data dir owner or root) is recorded as its uid."""
    with ctx.ledger.tx() as conn:
        custody.append(
            conn,
            "audit.read",
            {"via": via, "query": q.as_dict(), "recordings": [q.recording] if q.recording else []},
            actor=actor,
        )


def resolve(ctx: Context, q: Query) -> None:
    if q.recording:
        q.recording = rec.resolve(ctx.ledger.connect(), q.recording)


# --- output -----------------------------------------------------------------------------------


def rows(doc: dict[str, Any], lang: str) -> list[list[str]]:
    out = []
    for e in doc["events"]:
        who = e["operator_name"] or e["operator"] or e["actor"]
        out.append(
            [
                str(e["seq"]),
                e["at_station"] or e["at"],
                e["type"],
                sentence(e, lang),
                who,
                e["cert_no"] or "",
                e["recording_id"] or "",
                e["hash"],
            ]
        )
    return out


def to_csv(doc: dict[str, Any], lang: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADINGS[lang])
    w.writerows(rows(doc, lang))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel and WPS read it as UTF-8


def print_table(doc: dict[str, Any], lang: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="审计记录" if lang == "zh" else "Audit trail")
    for h in HEADINGS[lang][:-1]:
        table.add_column(h)
    for r in rows(doc, lang):
        r[6] = r[6][:8]
        table.add_row(*r[:-1])
    Console().print(table)
