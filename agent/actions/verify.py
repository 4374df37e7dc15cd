"""`evidence-agent verify`: re-hash every copy, walk the custody chain, check signatures,
and check the metadata versions against their custody events.

Exits non-zero on any mismatch and says which recording, file or event is wrong.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.actions import anchors, trust, verify_stream
from agent.actions import incremental as incr
from agent.core import rehash, sealedio
from agent.core.errors import AgentError
from agent.ingest import spool as spoolsweep
from agent.ledger import appendonly, crosscheck, custody, handover, sm3verify, stationkey
from agent.ledger import paths as stationpaths
from agent.ledger import recopy as recopied
from agent.ledger.sealsource import describe as describe_sealed
from agent.ledger.sealsource import findings as sealed_findings
from agent.rules import archive_keys
from agent.station.context import Context
from agent.tagging import metadata


@dataclass
class Problem:
    kind: str  # copy, missing, archive, custody, guard, ledger, metadata, checkpoint, key, anchor,
    # recopy (a copy made again from the recorder differed from the recorded hash),
    # sealed_source (a sealed interview segment failed authentication when ingest read it)
    subject: str
    message: str


@dataclass
class VerifyReport:
    recordings_checked: int = 0
    bytes_checked: int = 0
    custody_events: int = 0
    checkpoints: int = 0
    anchors_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    # Spool files recovery moved aside (agent.ingest.spool): listed for the operator, not a
    # failure, since no ledger row names them and nothing was lost.
    orphans: list[str] = field(default_factory=list)
    # Rows migration 0008 found outside every root: kept and checked where they point, listed
    # here so an operator can move them back under a root (not a failure by itself).
    paths_outside_roots: list[str] = field(default_factory=list)
    # Which public key the signatures were checked with; UNPINNED (key_pinned false) is not a
    # failure by itself, but only the anchors outside the station then hold.
    key_pinned: bool = False
    key_source: str = ""
    key_fingerprint: str | None = None
    # --incremental: the event the chain walk started after, and what was not re-checked.
    incremental: bool = False
    incremental_from: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    # 国密 (crypto.suite = "sm"): SM3 chain values and SM2 checkpoint signatures checked, and
    # the event the SM3 chain starts at (None: the ledger has no SM3 chain).
    sm3_events: int = 0
    sm3_from: int | None = None
    sm2_checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def run(
    ctx: Context, progress: Any = None, pubkey: Path | None = None, incremental: bool = False
) -> VerifyReport:
    """The full check (the default). `pubkey` pins the station key (else
    custody.pubkey_file/_fingerprint, else UNPINNED); nothing stored in the ledger can switch a
    check off. `incremental` re-checks only what changed since the newest anchor that holds
    (agent.actions.incremental) and says what it skipped."""
    report = VerifyReport(incremental=incremental)
    conn = ctx.ledger.connect()
    archive = _ArchiveReader(ctx)
    report.checkpoints = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    sched = _check_keys(ctx, conn, archive, report, pubkey)
    start = _check_anchors(ctx, conn, archive, report, sched, incremental)
    wanted = incr.changed(conn, start) if start else None
    report.paths_outside_roots = [
        r[0] for r in ctx.ledger.query(
            "SELECT id FROM recordings WHERE path_outside_roots IS NOT NULL ORDER BY id")
    ]  # fmt: skip
    # Streamed in batches (agent.actions.verify_stream): constant memory at any ledger size.
    total, walked = verify_stream.count_hashed(conn), 0
    rows = verify_stream.hashed_recordings(conn, wanted)
    log = None if progress else verify_stream.ProgressLog(total if wanted is None else len(wanted))
    for r in rows:
        before, walked = report.bytes_checked, walked + 1
        _check_copy(ctx.cfg, r, archive, report, ctx.keyring)
        if progress:
            progress(r["id"])
        elif log is not None:
            log(report.bytes_checked - before)
    if wanted is not None:
        report.skipped["copies"] = total - walked
    n, chain = incr.walk_from(conn, start) if start else custody.verify_chain(conn)
    report.custody_events = n
    report.problems += [Problem("custody", f"event {p.seq}", p.message) for p in chain]
    sm = sm3verify.run(conn, start)
    report.sm3_events, report.sm3_from = sm.events, sm.first
    report.sm2_checkpoints = sm.sm2_checkpoints
    report.problems += [Problem("custody", f"event {p.seq}", p.message) for p in sm.problems]
    report.problems += [
        Problem("checkpoint", f"event {p.seq}", p.message) for p in sm.checkpoint_problems
    ]
    report.problems += [Problem("guard", n, m) for n, m in appendonly.guard_problems(conn)]
    report.problems += [Problem("ledger", s, m) for s, m in crosscheck.recording_problems(conn)]
    report.problems += [
        Problem("recopy", rid, recopied.describe(rid, doc))
        for rid, doc in recopied.mismatches(conn)
    ]
    report.problems += [
        Problem("sealed_source", rid, describe_sealed(rid, doc))
        for rid, doc in sealed_findings(conn)
    ]
    report.problems += [
        Problem("metadata", rid, msg) for rid, msg in metadata.verify_versions(conn)
    ]
    report.orphans = spoolsweep.list_orphans(ctx)  # listed, not failed: nothing is lost
    return report


def _check_anchors(
    ctx: Context,
    conn: Any,
    archive: _ArchiveReader,
    report: VerifyReport,
    sched: handover.Schedule | None,
    incremental: bool,
) -> int:
    """Every anchor (full), or the newest one (incremental); returns the event the
    incremental check starts after (0: everything)."""
    key_for = sched.key_for if sched else None
    station = ctx.station_id
    if not incremental:
        checked, findings = anchors.check_all(
            conn, station, key_for, archive.listing, archive.versions
        )
        report.anchors_checked = checked
        report.problems += [Problem("anchor", f.subject, f.message) for f in findings]
        return 0
    start, total, findings = incr.base(conn, station, key_for, archive.listing, archive.versions)
    report.problems += [Problem("anchor", f.subject, f.message) for f in findings]
    report.anchors_checked = 1 if total else 0
    report.incremental_from = start
    report.skipped = {"anchors": max(total - 1, 0), "events": start, "copies": 0}
    return start


def _check_keys(
    ctx: Context, conn: Any, archive: _ArchiveReader, report: VerifyReport, pubkey: Path | None
) -> handover.Schedule | None:
    key_path = stationkey.private_path(ctx.cfg.keys_dir, ctx.cfg.custody.signing_key_file)
    if report.checkpoints and not os.path.lexists(key_path):
        report.problems.append(
            Problem(
                "key",
                str(key_path),
                stationkey.missing_message(
                    ctx.cfg.keys_dir, report.checkpoints, ctx.cfg.custody.signing_key_file
                ),
            )
        )
    station = ctx.station_id
    found = trust.resolve(
        ctx.cfg, pubkey, lambda fp: archive.document(archive_keys.pubkey_key("", station, fp))
    )
    report.key_pinned, report.key_source = found.pinned, found.source
    report.key_fingerprint = found.fingerprint
    report.problems += [Problem("key", s, m) for s, m in found.problems]
    start = found.pub if found.pinned else (handover.first_key(conn) or found.pub)
    if start is None:
        if report.checkpoints and not found.problems:
            report.problems.append(
                Problem("key", str(ctx.cfg.keys_dir), "station public key is missing")
            )
        return None
    sched = handover.schedule(conn, start, station)
    report.problems += [Problem("key", f"event {s}", m) for s, m in sched.problems]
    report.problems += _checkpoint_problems(conn, sched)
    if found.pinned:
        report.problems += _local_key_problems(ctx, sched)
    return sched


def _checkpoint_problems(conn: Any, sched: handover.Schedule) -> list[Problem]:
    """Each checkpoint with the key in force at its head (following hand-overs)."""
    out = []
    for row in conn.execute("SELECT * FROM checkpoints ORDER BY seq"):
        pub = sched.key_for(int(row["head_seq"]))
        msg = custody.verify_checkpoint(conn, pub, row["statement"], row["signature"])
        if msg:
            where = f"event {row['head_seq']}"
            out.append(Problem("checkpoint", where, f"checkpoint {row['seq']}: {msg}"))
    return out


def _local_key_problems(ctx: Context, sched: handover.Schedule) -> list[Problem]:
    local = stationkey.load_public(ctx.cfg.keys_dir)
    if local is None or stationkey.fingerprint(local) == sched.fingerprints[-1]:
        return []
    return [
        Problem(
            "key",
            str(ctx.cfg.keys_dir / stationkey.PUB_FILE),
            f"the station key next to the ledger (fingerprint {stationkey.fingerprint(local)}) "
            f"is not the pinned key ({sched.fingerprints[0]}) nor one it handed over to: it "
            "was replaced, or the pin is stale",
        )
    ]


def notes(report: VerifyReport) -> list[str]:
    """Text-output lines about the key trusted and, with --incremental, what was skipped."""
    out = [key_line(report)]
    if report.sm3_from is not None or report.sm2_checkpoints:
        out.append(
            f"SM3 chain: {report.sm3_events} events checked (chain from event "
            f"{report.sm3_from}); SM2: {report.sm2_checkpoints} checkpoint signatures checked"
        )
    if report.incremental:
        s = report.skipped
        out.append(
            f"INCREMENTAL from event {report.incremental_from}: skipped {s.get('events', 0)} "
            f"events, {s.get('copies', 0)} copies, {s.get('anchors', 0)} older anchors "
            "(run `verify` without --incremental for the full check)"
        )
    return out


def key_line(report: VerifyReport) -> str:
    """The report's line about the key it trusted (text output)."""
    if report.key_pinned:
        return f"KEY pinned {report.key_fingerprint}: {report.key_source}"
    return (
        f"UNPINNED key {report.key_fingerprint}: signatures were checked with the key next to "
        "the ledger; pin it with --pubkey FILE or custody.pubkey_fingerprint "
        "(docs/operations.md)"
    )


def _check_copy(
    cfg: Any, r: Any, archive: _ArchiveReader, report: VerifyReport, keys: Any = None
) -> None:
    """Re-hash the spool copy (its plaintext, through the envelope when it is encrypted), or
    the archived one once housekeeping removed the spool copy."""
    path = stationpaths.spool_file(cfg, r["spool_path"])
    if path is not None and r["spool_removed_at"] is None and path.exists():
        try:
            actual, size = sealedio.hash_plain(path, keys)
        except AgentError as exc:  # an envelope that fails, or no key to open it
            report.problems.append(Problem("copy", r["id"], f"{path}: {exc}"))
            return
        where = str(path)
    elif r["archive_ref"]:
        if path is not None and r["spool_removed_at"] is None:
            report.problems.append(
                Problem("missing", r["id"], f"spool copy {path} vanished without a record")
            )
        where = r["archive_ref"]
        try:
            actual, size = archive.hash(r["archive_ref"])
        except (AgentError, OSError) as exc:
            report.problems.append(
                Problem("archive", r["id"], f"cannot read archived copy {where}: {exc}")
            )
            return
    else:
        report.problems.append(
            Problem("missing", r["id"], f"no copy found (spool {r['spool_path']})")
        )
        return
    report.recordings_checked += 1
    report.bytes_checked += size
    if actual != r["sha256"]:
        report.problems.append(
            Problem(
                "copy",
                r["id"],
                f"{where}: SHA-256 {actual} does not match the ledger's "
                f"{r['sha256']} (the copy was altered or damaged)",
            )
        )


class _ArchiveReader:
    """Opens the archive store only if some recording has to be checked there."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store: Any = None

    def _open(self) -> Any:
        if self.store is None:
            from agent.archive.stores import open_store

            self.store = open_store(self.ctx)
        return self.store

    def document(self, relkey: str) -> bytes | None:
        found = self.versions(relkey)  # the oldest: documents read here are write-once
        return found[0] if found else None

    def versions(self, relkey: str) -> list[bytes]:
        return self._open().document_versions(relkey)  # type: ignore[no-any-return]

    def listing(self, relprefix: str) -> list[str]:
        return self._open().list_documents(relprefix)  # type: ignore[no-any-return]

    def hash(self, ref: str) -> tuple[str, int]:
        self._open()
        with self.store.open_read(ref) as f:
            return rehash.sha256_stream(f)
