"""Tags applied at discovery: assignment rules from the config and sidecars on the volume.

Order per recording: assignment rules (`[[tagging.assign]]`, in config order, new recordings
only), then the volume's `TAGS.JSON` entries, then the clip's own sidecar (`<clip>.json` or
`<clip name without extension>.json`): the most specific source is applied last. Each sidecar
entry is applied once per recording and content (table `sidecar_applied`), so a rescan never
undoes an operator's later correction, while an edited sidecar is applied once more. A bad
sidecar is listed as a volume issue naming the file and the problem; it never stops ingest.
Schema: docs/compliance.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.config.compliance import AssignmentRule
from agent.core import clock
from agent.core.errors import TagError
from agent.core.safefs import display, open_beneath
from agent.ledger import custody
from agent.recorders.volume import Issue, ScanResult, SourceFile
from agent.station.context import Context
from agent.tagging import apply as tagging
from agent.tagging import metadata as md

logger = logging.getLogger(__name__)

VOLUME_SIDECARS = (b"TAGS.JSON", b"tags.json", b"Tags.json")
MAX_SIDECAR_BYTES = 64 * 1024
SCHEMA = "evidence-agent/tags/1"


class SidecarEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    files: list[str] | None = Field(None, description="Clip paths or names this entry tags.")
    start_from: datetime | None = Field(
        None, alias="from", description="Clips starting at or after."
    )
    start_to: datetime | None = Field(None, alias="to", description="Clips starting before.")
    reason: str | None = None
    fields: dict[str, Any]


class SidecarFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_id: str = Field(SCHEMA, alias="schema")
    actor: str | None = None
    reason: str | None = None
    fields: dict[str, Any] | None = None  # a clip's own sidecar
    entries: list[SidecarEntry] | None = None  # the volume's TAGS.JSON


@dataclass
class _Source:
    path: str  # display path on the volume
    doc: SidecarFile


@dataclass
class Plan:
    """What discovery will apply, read before the ledger transaction (file I/O)."""

    ctx: Context
    root: str
    issues: list[Issue]
    volume: _Source | None = None
    clips: dict[bytes, _Source] = field(default_factory=dict)
    validator: md.Validator | None = None

    def apply(self, conn: sqlite3.Connection, placed: list[tuple[SourceFile, str, str]]) -> None:
        """Tag the volume's recordings inside the registering transaction."""
        for f, rid, what in placed:
            if what == "new":
                self._rules(conn, rid)
            if self.volume is not None:
                for i, entry in enumerate(self.volume.doc.entries or []):
                    if _entry_matches(conn, entry, f, rid, self.ctx.cfg.station.timezone):
                        self._sidecar(conn, rid, f, self.volume, entry.fields, entry.reason, i)
            own = self.clips.get(f.rel)
            if own is not None and own.doc.fields is not None:
                self._sidecar(conn, rid, f, own, own.doc.fields, own.doc.reason, None)

    def _rules(self, conn: sqlite3.Connection, rid: str) -> None:
        row = conn.execute(
            "SELECT r.officer_id, r.unit_id, COALESCE(r.start_corrected, r.start) AS start,"
            " d.serial FROM recordings r"
            " JOIN devices d ON d.id = r.device_id WHERE r.id = ?",
            (rid,),
        ).fetchone()
        tz = ZoneInfo(self.ctx.cfg.station.timezone)
        for n, rule in enumerate(self.ctx.cfg.tagging.assign, start=1):
            if not rule_matches(rule, row, tz):
                continue
            name = rule.name or f"#{n}"
            try:
                clean = self._validator().validate(rule.fields)
                _apply_atomically(
                    conn,
                    self.ctx,
                    rid,
                    clean,
                    actor=f"rule:{name}",
                    reason=f"assignment rule {name}",
                    origin="rule",
                )
            except TagError as exc:
                logger.error("tagging.assign rule %s not applied to %s: %s", name, rid, exc)

    def _sidecar(
        self,
        conn: sqlite3.Connection,
        rid: str,
        f: SourceFile,
        src: _Source,
        fields: dict[str, Any],
        reason: str | None,
        entry: int | None,
    ) -> None:
        actor = src.doc.actor or "sidecar"
        body = {"source": src.path, "actor": actor, "fields": fields, "reason": reason}
        digest = hashlib.sha256(custody.canonical(body).encode()).hexdigest()
        done = conn.execute(
            "SELECT 1 FROM sidecar_applied WHERE recording_id=? AND digest=?", (rid, digest)
        ).fetchone()
        if done:
            return
        where = src.path if entry is None else f"{src.path} entries[{entry}]"
        why = reason or src.doc.reason or f"sidecar {where}"
        try:
            clean = self._validator().validate(fields)
            _apply_atomically(conn, self.ctx, rid, clean, actor=actor, reason=why, origin="sidecar")
        except TagError as exc:
            self.issues.append(Issue(src.path, "error", f"not applied to {f.display}: {exc}"))
            return
        conn.execute(
            "INSERT INTO sidecar_applied(recording_id, digest, source, at) VALUES(?,?,?,?)",
            (rid, digest, where, clock.iso(clock.now())),
        )

    def _validator(self) -> md.Validator:
        if self.validator is None:
            self.validator = tagging.validator(self.ctx)
        return self.validator


def _apply_atomically(
    conn: sqlite3.Connection, ctx: Context, rid: str, clean: dict[str, Any], **how: Any
) -> None:
    # One failing tag must not leave half its rows in the registering transaction.
    conn.execute("SAVEPOINT autotag")
    try:
        tagging.apply(conn, ctx, rid, clean, **how)
    except BaseException:
        conn.execute("ROLLBACK TO autotag")
        conn.execute("RELEASE autotag")
        raise
    conn.execute("RELEASE autotag")


def rule_matches(rule: AssignmentRule, row: sqlite3.Row, tz: ZoneInfo) -> bool:
    """Does an assignment rule select this recording (officer, recorder, unit, start time)?"""
    for key, value in (
        ("officer_id", rule.officer_id),
        ("serial", rule.serial),
        ("unit_id", rule.unit_id),
    ):
        if value is not None and row[key] != value:
            return False
    start = clock.parse_iso(row["start"])
    if start is None:
        return not (rule.date_from or rule.date_to or rule.time_from or rule.time_to)
    local = start.astimezone(tz)
    if (rule.date_from and local.date() < rule.date_from) or (
        rule.date_to and local.date() > rule.date_to
    ):
        return False
    t = local.time().replace(tzinfo=None)
    return not ((rule.time_from and t < rule.time_from) or (rule.time_to and t >= rule.time_to))


def _entry_matches(
    conn: sqlite3.Connection, entry: SidecarEntry, f: SourceFile, rid: str, tz: str
) -> bool:
    if entry.files is not None:
        wanted = {p.replace("\\", "/").strip("/") for p in entry.files}
        if f.display not in wanted and f.name not in wanted:
            return False
    if entry.start_from is None and entry.start_to is None:
        return True
    row = conn.execute(
        "SELECT COALESCE(start_corrected, start) AS start FROM recordings WHERE id = ?", (rid,)
    ).fetchone()
    start = clock.parse_iso(row["start"]) if row else None
    if start is None:
        return False
    lo, hi = (_aware(t, tz) for t in (entry.start_from, entry.start_to))
    return (lo is None or start >= lo) and (hi is None or start < hi)


def _aware(t: datetime | None, tz: str) -> datetime | None:
    if t is None or t.tzinfo is not None:
        return t
    return t.replace(tzinfo=ZoneInfo(tz))


# --- reading sidecars (before the transaction) ------------------------------------------------


def prepare(ctx: Context, root: os.PathLike[str] | str, result: ScanResult) -> Plan:
    """Read the volume's sidecars; the Plan applies them (and the rules) in the transaction."""
    plan = Plan(ctx, str(root), result.issues)
    if ctx.cfg.tagging.sidecars:
        _read_sidecars(plan, root, result)
    if plan.volume is not None or plan.clips or ctx.cfg.tagging.assign:
        # Built here, so the roster is read before the registering transaction, not in it.
        plan.validator = tagging.validator(ctx)
    return plan


def _read_sidecars(plan: Plan, root: os.PathLike[str] | str, result: ScanResult) -> None:
    # Sidecars are not evidence, so the scan listed them as ignored: look only at those.
    ignored = {i.path for i in result.issues if i.kind == "ignored"}
    for name in VOLUME_SIDECARS:
        if display(name) in ignored:
            plan.volume = _read(root, name, result.issues, volume=True)
            break
    for f in result.files:
        stem = f.rel.rsplit(b".", 1)[0]
        for cand in (f.rel + b".json", f.rel + b".JSON", stem + b".json", stem + b".JSON"):
            if display(cand) in ignored:
                src = _read(root, cand, result.issues, volume=False)
                if src is not None:
                    plan.clips[f.rel] = src
                break


def _read(root: Any, rel: bytes, issues: list[Issue], volume: bool) -> _Source | None:
    shown = display(rel)
    try:
        fd = open_beneath(root, rel)
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(MAX_SIDECAR_BYTES + 1)
        if len(raw) > MAX_SIDECAR_BYTES:
            raise ValueError(f"larger than {MAX_SIDECAR_BYTES} bytes")
        text = _decode(raw)
        doc = SidecarFile.model_validate(json.loads(text))
        if volume and doc.entries is None:
            raise ValueError('a volume TAGS.JSON needs "entries": [...]')
        if not volume and doc.fields is None:
            raise ValueError('a clip sidecar needs "fields": {...}')
        if doc.schema_id != SCHEMA:
            raise ValueError(f'"schema" is {doc.schema_id!r}; this agent reads {SCHEMA!r}')
    except (OSError, ValueError, ValidationError) as exc:
        # ValidationError and JSONDecodeError are ValueErrors; the message names the key.
        issues.append(Issue(shown, "error", f"tag sidecar not read: {_short(exc)}"))
        return None
    return _Source(shown, doc)


def _decode(raw: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):  # Chinese Windows tools write GBK
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ValueError("not UTF-8 or GBK text")


def _short(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)
