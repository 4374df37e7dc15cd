"""Registering a volume: its recorder is docked and its evidence files are in the ledger.

Idempotent, as the ledger is the truth and mount events are hints: a file already known by
(recorder, path, size, mtime) is found again, never duplicated. Scheduling, copying and
recovery are their own services (agent.ingest.schedule, .copyjob, .recovery), put together
with this one by agent.ingest.ingestor.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent.config.loader import AgentConfig
from agent.core import clock, identifiers
from agent.core.safefs import SourceFile, open_beneath
from agent.ingest.bays import Bays
from agent.ledger import devices as device_rows
from agent.ledger import recordings as rec
from agent.recorders import recclock
from agent.recorders.inventory import canonical_vendor
from agent.recorders.linker import Linker
from agent.recorders.naming import parse_name
from agent.recorders.unknown_usb import is_unknown_volume
from agent.recorders.volume import Issue, ScanResult, identify_volume, scan
from agent.rules.mediainfo import probe
from agent.rules.workcal import deadline as compute_deadline
from agent.station.context import Context
from agent.tagging import autotag
from drivers.base import DeviceIdentity

logger = logging.getLogger(__name__)


@dataclass
class VolumeReport:
    volume: Path
    serial: str
    device_id: int
    files: int = 0
    new: int = 0
    updated: int = 0
    issues: list[Issue] = field(default_factory=list)
    quarantine: bool = False


class VolumeRegistration:
    """Docking a volume's recorder and registering its files (the first half of ingest)."""

    def __init__(self, ctx: Context, bays: Bays, linker: Linker | None = None) -> None:
        self.ctx = ctx
        self.cfg: AgentConfig = ctx.cfg
        self.bays = bays
        # Links volumes to recorders the USB/serial drivers identified (the daemon shares its
        # linker with the driver threads; alone, it still links through the ledger).
        self.linker = linker or Linker()

    # --- discovery -------------------------------------------------------------------------

    def register_volume(
        self, root: Path, ident: DeviceIdentity | None = None, pin: bool = False
    ) -> VolumeReport:
        """Register a volume's files. With `pin`, this process takes the recorder for itself
        (see agent.ledger.copylocks) before other processes can see its new recordings."""
        result = scan(root, self.cfg)
        ident, refused = identifiers.vet_identity(identify_volume(root, self.cfg, result, ident))
        ident = self.linker.link(self.ctx.ledger.connect(), root, ident)
        ident, more = identifiers.vet_identity(ident)  # a linked driver identity, vetted too
        refused += more
        metas = [(f, self._file_fields(root, f, ident)) for f in result.files]
        tags = autotag.prepare(self.ctx, root, result)  # sidecars are read outside the tx
        with self.ctx.ledger.tx() as conn:
            ident = replace(ident, vendor=canonical_vendor(conn, ident.vendor, ident.serial))
            registered, inv_status, quarantine = self.ctx.inventory_status(
                ident.vendor, ident.serial
            )
            quarantine = quarantine or is_unknown_volume(root)
            docked = self._dock(conn, root, ident, registered, inv_status, quarantine)
            newly = docked.device_id
            if docked.newly_docked:  # docked again (not a rescan): a hung read is forgiven
                self.bays.redocked(newly)
            device_rows.mark_refused(conn, newly, refused)
            if pin and not self.ctx.device_locks.try_acquire(newly, pin=True):
                logger.info(
                    "recorder %s is being copied by another agent process; sharing it", ident.serial
                )
            offset = recclock.pending_offset(conn, self.ctx, newly)
            report = VolumeReport(
                root,
                ident.serial,
                newly,
                len(result.files),
                issues=result.issues,
                quarantine=quarantine,
            )
            placed = []
            for f, fields in metas:
                rid, what = rec.discover_file(conn, report.device_id, f, fields)
                placed.append((f, rid, what))
                report.new += what == "new"
                report.updated += what == "updated"
                if offset is not None and what != "known":
                    recclock.correct_recording(conn, self.ctx, rid, offset)
            tags.apply(conn, placed)  # assignment rules and sidecars (agent.tagging.autotag)
            self._record_issues(conn, root, ident.serial, result)
        logger.info(
            "volume %s (recorder %s, serial from %s): %d evidence files, %d new, %d other entries",
            root,
            ident.serial,
            ident.source,
            report.files,
            report.new,
            len(result.issues),
        )
        return report

    def _dock(
        self,
        conn: sqlite3.Connection,
        root: Path,
        ident: DeviceIdentity,
        registered: bool,
        inv_status: str | None,
        quarantine: bool,
    ) -> device_rows.Docked:
        return device_rows.dock(
            conn,
            ident,
            registered=registered,
            inventory_status=inv_status,
            quarantine=quarantine,
            volume=str(root),
        )

    def _file_fields(self, root: Path, f: SourceFile, ident: DeviceIdentity) -> dict[str, Any]:
        tz = self.cfg.station.timezone
        parsed = parse_name(f.name, self.cfg.ingest.naming_patterns, tz)
        officer, refused = identifiers.vet_name_field(
            "officer_id", parsed.officer if parsed else None, parsed.pattern if parsed else ""
        )
        mtime = clock.from_mtime_ns(f.mtime_ns)
        start, start_src = (
            (parsed.start, f"name:{parsed.pattern}")
            if parsed and parsed.start
            else (mtime, "mtime")
        )
        try:
            fd = open_beneath(root, f.rel)
            try:
                info = probe(fd)
            finally:
                os.close(fd)
            duration, playable, why = info.duration_s, info.playable, info.reason
        except OSError as exc:
            duration, playable, why = None, None, f"cannot read: {exc}"
        if duration is not None and start_src != "mtime":
            end, end_src = start + timedelta(seconds=duration), "container"
        else:
            end, end_src = mtime, "mtime"
        due = compute_deadline(end, self.ctx.default_rule, self.ctx.calendar)
        return {
            "officer_id": officer or ident.officer_id,
            "unit_id": ident.unit_id,
            "start": clock.iso(start),
            "end": clock.iso(end),
            "start_source": start_src,
            "end_source": end_src,
            "duration_s": duration,
            "playable": None if playable is None else int(playable),
            "playable_reason": why,
            "deadline": clock.iso(due),
            "identity_refused": refused,
        }

    def _record_issues(
        self, conn: sqlite3.Connection, root: Path, serial: str, result: ScanResult
    ) -> None:
        at = clock.now_iso()
        for issue in result.issues:
            cur = conn.execute(
                "UPDATE volume_issues SET last_seen=?, reason=? WHERE volume=? AND path=?"
                " AND kind=?",
                (at, issue.reason, str(root), issue.path, issue.kind),
            )
            if cur.rowcount == 0:
                conn.execute(
                    "INSERT INTO volume_issues(volume, serial, path, kind, reason, first_seen,"
                    " last_seen) VALUES(?,?,?,?,?,?,?)",
                    (str(root), serial, issue.path, issue.kind, issue.reason, at, at),
                )
                if issue.kind != "ignored":
                    logger.warning(
                        "volume %s: %s %s: %s", root, issue.kind, issue.path, issue.reason
                    )

    def undock(self, root: Path) -> None:
        with self.ctx.ledger.tx() as conn:
            for serial in device_rows.undock_volume(conn, str(root)):
                logger.info("recorder %s undocked (%s gone)", serial, root)
