"""Retained state payloads: station, recorders, compliance, custody (docs/mqtt.md, schemas).

Built from the ledger (the truth) on every change, so a dashboard sees the same numbers as
`status --json`. Evidence content never appears here: counts, sizes, ids and times only.
Optional parts of other features (compliance engine, S3 backlog) are imported lazily and
replaced by a minimal summary from the ledger when they are not installed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from agent.actions import status
from agent.core import clock
from agent.ledger import custody
from agent.ledger.stationkey import fingerprint, public_raw
from agent.ledger.status_query import counts_by_state
from agent.station.context import Context

logger = logging.getLogger(__name__)

QUEUED = ("discovered", "copying", "failed")  # waiting for (or in) ingest


@dataclass
class Progress:
    recording: str
    done: int
    total: int
    at: float = 0.0  # monotonic time of the last update

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def now_local(ctx: Context) -> str:
    return clock.iso(clock.local(clock.now(), ctx.cfg.station.timezone)) or ""


def station_state(ctx: Context, started: float, outbox_pending: int) -> dict[str, Any]:
    """`status --json`'s station object plus what a dashboard watches (queues, deadlines)."""
    q = ctx.ledger
    counts = {s: 0 for s in (*QUEUED, "quarantined")}
    by_state = counts_by_state(q.connect())  # trigger-kept counts, not a pass over history
    for state in counts:
        counts[state] = by_state.get(state, (0, 0))[0]
    n, b = by_state.get("spooled", (0, 0))
    spooled = {"n": n, "b": b}
    deadlines = q.one(
        "SELECT MIN(deadline) oldest, SUM(julianday(deadline) < julianday('now')) overdue"
        " FROM recordings WHERE deadline IS NOT NULL AND deadline_met_at IS NULL"
    )
    docked = q.one("SELECT COUNT(*) FROM devices WHERE docked = 1")
    return {
        **status.station(ctx),
        "station": ctx.station_id,
        "at": now_local(ctx),
        "uptime_s": round(time.monotonic() - started, 1),
        "queue": {**counts, "total": sum(counts[s] for s in QUEUED)},
        "active_ingests": counts["copying"],
        "upload_backlog": _backlog(ctx, spooled),
        "oldest_open_deadline": deadlines["oldest"] if deadlines else None,
        "deadlines_overdue": int(deadlines["overdue"] or 0) if deadlines else 0,
        "recorders_docked": int(docked[0]) if docked else 0,
        "outbox_pending": outbox_pending,
    }


def _backlog(ctx: Context, spooled: Any) -> dict[str, Any]:
    backlog: dict[str, Any] = {
        "recordings": int(spooled["n"]) if spooled else 0,
        "bytes": int(spooled["b"]) if spooled else 0,
        "estimated_drain_s": None,
    }
    try:
        from agent.archive.backlog import archive_backlog

        backlog.update(archive_backlog(ctx))
        # One name per field on the wire: MQTT's documented `estimated_drain_s` only.
        backlog["estimated_drain_s"] = backlog.pop("estimated_drain_seconds", None)
    except Exception:  # noqa: BLE001 - a status field must not stop the status
        logger.exception("archive backlog unavailable for the station state")
    return backlog


def recorder_states(ctx: Context, progress: dict[str, Progress]) -> dict[str, dict[str, Any]]:
    """serial -> `status --json`'s recorder object plus pending work and copy progress."""
    pending = {
        str(r["serial"]): (int(r["n"]), int(r["b"]))
        for r in ctx.ledger.query(
            "SELECT d.serial, SUM(c.n) n, SUM(c.bytes) b FROM recording_counts c"
            " JOIN devices d ON d.id = c.device_id"
            f" WHERE c.state IN ({','.join('?' * len(QUEUED))}) GROUP BY d.serial",
            QUEUED,
        )
    }
    at = now_local(ctx)
    out: dict[str, dict[str, Any]] = {}
    for rec in status.recorders(ctx):
        if not rec["docked"] and rec["last_docked"] is None:
            continue  # listed in the inventory, never docked here: not this station's to report
        rec.pop("volume", None)  # a local mount path: of no use to a dashboard
        # `status --json` names these pending_files/pending_bytes; MQTT documents
        # files_pending/bytes_pending. One name per field on the wire: MQTT's.
        rec.pop("pending_files", None)
        rec.pop("pending_bytes", None)
        serial = rec["serial"]
        files, nbytes = pending.get(serial, (0, 0))
        p = progress.get(serial)
        out[serial] = {
            "station": ctx.station_id,
            "at": at,
            **rec,
            "files_pending": files,
            "bytes_pending": nbytes,
            "progress": _progress(p) if p and rec["docked"] else None,
        }
    return out


def _progress(p: Progress) -> dict[str, Any]:
    pct = 100.0 if p.total == 0 else round(100.0 * p.done / p.total, 1)
    return {"recording": p.recording, "done_bytes": p.done, "total_bytes": p.total, "percent": pct}


def custody_state(ctx: Context) -> dict[str, Any]:
    pub = ctx.key.public_key()
    latest = custody.latest_checkpoint(ctx.ledger.connect())
    return {
        "station": ctx.station_id,
        "at": now_local(ctx),
        "checkpoint": latest,
        "key_fingerprint": fingerprint(pub),
        "public_key": public_raw(pub).hex(),
        "alg": custody.ALG,
    }


def compliance_state(ctx: Context) -> dict[str, Any]:
    """The compliance engine's summary (deadlines, untagged, ratio per local unit)."""
    from agent.compliance.engine import compliance_summary

    return compliance_summary(ctx)
