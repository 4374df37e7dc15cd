"""Copying one claimed recording durably and committing the result, with its events.

`ingest` copies the recording (agent.core.copier: hashed while read, fsynced, re-read), then
commits `spooled` (or `quarantined`) with its custody and `ingest.completed` events in one
transaction; a failed copy becomes `failed` (`ingest.failed`, retried later), and a read stuck
in the kernel also flags its recorder (`recorder.error` `read_stalled`, agent.ingest.bays).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.core import clock, crashpoint, identifiers
from agent.core.copier import copy_file
from agent.core.errors import (
    IntegrityError,
    SealedSourceError,
    SourceChangedError,
    SourceStalledError,
)
from agent.ingest import recopy, sealbroken
from agent.ingest import spool as spoolsweep
from agent.ingest.bays import Bays
from agent.ledger import devices as device_rows
from agent.ledger import paths as stationpaths
from agent.ledger import recopy as recopied
from agent.ledger import recordings as rec
from agent.recorders.unknown_usb import is_unknown_volume
from agent.station.context import Context

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, str, int, int], None]  # serial, recording id, done, total


@dataclass
class Outcome:
    recording_id: str
    state: str
    sha256: str | None = None
    reason: str | None = None
    size: int = 0


class CopyJob:
    def __init__(self, ctx: Context, bays: Bays, progress: ProgressFn | None = None) -> None:
        self.ctx = ctx
        self.bays = bays
        self.progress = progress

    def ingest(self, row: sqlite3.Row) -> Outcome:
        """Copy a claimed recording durably and commit the result (or its failure)."""
        rid, serial = str(row["id"]), str(row["serial"])
        try:
            return self._copy(row)
        except SourceStalledError as exc:
            return self._stalled(row, exc)
        except SealedSourceError as exc:  # an integrity finding: held, never retried
            with self.ctx.ledger.tx() as conn:
                sealbroken.commit(conn, row, exc)
            return Outcome(rid, "quarantined", reason="sealed_source_auth")
        except (OSError, SourceChangedError, IntegrityError) as exc:
            reason = _reason(exc)
            logger.warning(
                "recording %s (%s on %s): copy failed: %s; will retry",
                rid,
                row["source_path"],
                serial,
                reason,
            )
            with self.ctx.ledger.tx() as conn:
                _fail(conn, rid, serial, reason)
            return Outcome(rid, "failed", reason=reason)
        finally:
            self.bays.done(int(row["device_id"]))

    def _stalled(self, row: sqlite3.Row, exc: SourceStalledError) -> Outcome:
        """The bay fails, not the agent: the recording is failed, the recorder flagged and
        skipped until it docks again, and the worker goes back to the other bays."""
        rid, serial, device = str(row["id"]), str(row["serial"]), int(row["device_id"])
        reason = str(exc)
        logger.error("recorder %s: %s (recording %s)", serial, reason, rid)
        self.bays.stall(device)
        with self.ctx.ledger.tx() as conn:
            _fail(conn, rid, serial, reason)
            device_rows.report_error(
                conn, driver=None, handle=None, serial=serial, stage="read", code="read_stalled",
                message=reason, keep_on=str(row["vendor"]), vendor=row["vendor"],
            )  # fmt: skip
        return Outcome(rid, "failed", reason=reason)

    def _copy(self, row: sqlite3.Row) -> Outcome:
        rid, serial = str(row["id"]), str(row["serial"])
        # Laid out by ids the agent owns: no recorder-supplied string names a spool path.
        dest = spoolsweep.dest_for(
            self.ctx.spool, int(row["device_id"]), rid, str(row["source_path"])
        )
        total = int(row["size"])
        done = 0

        def on_bytes(n: int) -> None:
            nonlocal done
            done += n
            if self.progress:
                self.progress(serial, rid, done, total)

        result = copy_file(
            Path(row["volume"]),
            bytes(row["source_path_raw"]),
            total,
            int(row["mtime_ns"]),
            dest,
            self.ctx.spool_tmp,
            chunk=self.ctx.cfg.ingest.chunk_bytes,
            verify=self.ctx.cfg.ingest.verify_reread,
            progress=on_bytes,
            seal=self.ctx.seal,
            stall_seconds=self.ctx.cfg.ingest.stall_seconds,
            sm3=self.ctx.cfg.crypto.suite == "sm",
            # A closed interview segment is sealed in its volume: copy its plaintext.
            source_keys=self.ctx.keyring if row["vendor"] == "interview" else None,
        )
        quarantine = self.ctx.inventory_status(row["vendor"], serial)[2]
        quarantine = quarantine or is_unknown_volume(row["volume"])
        at = clock.now_iso()
        with self.ctx.ledger.tx() as conn:
            # Copied before (its spool copy went missing): the first copy's hash stands.
            recorded = recopied.previous_hash(conn, rid)
            if recorded is not None and recorded != result.sha256:
                copied = {"sha256": result.sha256, "key_id": result.key_id}
                recopy.commit_mismatch(self.ctx, conn, row, dest, recorded, copied)
                return Outcome(rid, "quarantined", recorded, "recopy_mismatch", total)
            refused = identifiers.refused_reason(conn, rid)
            state = "quarantined" if quarantine or refused else "spooled"
            rec.transition(
                conn,
                rid,
                state,
                fields={
                    "sha256": result.sha256,
                    "spool_path": stationpaths.spool_stored(self.ctx.cfg, dest),
                    "spooled_at": at,
                    "verified_at": at if result.verified else None,
                    "source_size_at_hash": total,
                    "source_mtime_ns_at_hash": row["mtime_ns"],
                    "spool_key_id": result.key_id,
                    "sm3": result.sm3,
                    "size": result.size,  # the plaintext's, also of a sealed source
                    "deadline_met_at": at,
                    "reason": refused,
                },
                custody_type=f"recording.{state}",
                payload={
                    "sha256": result.sha256,
                    "size": result.size,
                    "alg": "sha256",
                    **({"sm3": result.sm3} if result.sm3 else {}),
                    "spool_path": stationpaths.spool_stored(self.ctx.cfg, dest),
                    "verified_reread": result.verified,
                    **(
                        {"encrypted": {"suite": result.suite, "key": result.key_id}}
                        if result.key_id
                        else {}
                    ),  # fmt: skip
                    "source": row["source_path"],
                    "serial": serial,
                    **({"identity_refused": refused} if refused else {}),
                    **({"recopy": {"matched": recorded}} if recorded else {}),
                },
                event="ingest.completed",
                event_fields={
                    "recording": rid,
                    "serial": serial,
                    "sha256": result.sha256,
                    "size": result.size,
                    "state": state,
                },
            )
        crashpoint.hit("ingest.after_commit")
        return Outcome(rid, state, result.sha256, size=result.size)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} (errno {exc.errno})"
    return str(exc)


def _fail(conn: sqlite3.Connection, rid: str, serial: str, reason: str) -> None:
    """A copy that failed: the recording is `failed` (retried later), in custody and events."""
    rec.transition(
        conn,
        rid,
        "failed",
        fields={"reason": reason},
        custody_type="recording.failed",
        payload={"reason": reason},
        event="ingest.failed",
        event_fields={"recording": rid, "serial": serial, "reason": reason},
    )
