"""Tagging: the one call every source of case metadata goes through.

`tag()` serves the CLI and the MQTT `cmd/tag` path; discovery (assignment rules, sidecars,
agent.tagging.autotag) calls `apply()` inside its own transaction. Input is validated before
anything is written; all recordings of one call are tagged in one transaction, or none. A tag that
changes the category recomputes the deadline with that category's rule (custody event
`deadline.recomputed`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from agent.config.compliance import METADATA_KEYS
from agent.core import clock
from agent.core.errors import TagError, UnknownRecordingError
from agent.ledger import custody, events
from agent.ledger import recordings as rec
from agent.rules.workcal import deadline as compute_deadline
from agent.station.context import Context
from agent.tagging import metadata as md
from agent.tagging.context_fields import LEDGER_ONLY

ORIGINS = ("cli", "console", "mqtt", "sidecar", "rule", "interview")


@dataclass
class TagResult:
    recording_id: str
    version: int  # the current version after the call
    changed: list[str] = field(default_factory=list)  # empty: nothing new, no version added
    metadata: dict[str, Any] | None = None
    deadline: str | None = None
    deadline_recomputed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validator(ctx: Context, now: datetime | None = None) -> md.Validator:
    """A validator with the roster in force (the last good one if the file is broken)."""
    rosters = ctx.rosters
    officer_ids = rosters.officer_ids()
    note = ""
    if rosters.cache.roster_error:
        note = (
            " (the roster file has an error, the last good roster is used: "
            f"{rosters.cache.roster_error})"
        )
    return md.Validator(ctx.cfg, officer_ids, note, now)


def tag(
    ctx: Context,
    refs: list[str],
    fields: dict[str, Any],
    *,
    actor: str,
    reason: str | None = None,
    origin: str = "cli",
) -> list[TagResult]:
    """Set `fields` on every recording in `refs` (ids or SHA-256 prefixes of 12+ digits).

    Fields not given keep their value; a field given as None or "" is cleared. Changing a
    value that was already set needs a `reason`. Raises TagError on any invalid input, before
    anything is written.
    """
    if not refs:
        raise TagError("no recordings given: name them by id or SHA-256 prefix (12+ hex digits)")
    if not fields:
        raise TagError(f"no fields to set; valid fields: {', '.join(METADATA_KEYS)}")
    if origin not in ORIGINS:
        raise TagError(f"origin {origin!r} is not one of {', '.join(ORIGINS)}")
    actor = (actor or "").strip()
    if not actor:
        raise TagError("who is tagging is required (the operator's id)")
    reason = (reason or "").strip() or None
    clean = validator(ctx).validate(fields)
    with ctx.ledger.tx() as conn:
        ids: list[str] = []
        for ref in refs:
            try:
                rid = rec.resolve(conn, ref.strip())
            except UnknownRecordingError as exc:
                raise TagError(str(exc)) from None
            if rid not in ids:
                ids.append(rid)
        return [
            apply(conn, ctx, rid, clean, actor=actor, reason=reason, origin=origin) for rid in ids
        ]


def _defaults(row: sqlite3.Row) -> dict[str, Any]:
    """What the recording itself says, filled into its first version."""
    doc = md.empty()
    doc.update(
        serial=row["serial"],
        officer_id=row["officer_id"],
        collector=row["officer_id"],  # the wearer of a body-worn recorder collects its footage
        unit_id=row["unit_id"],
        # The recorder clock corrected at dock, when it was off (agent.recorders.recclock).
        capture_time=rec.effective_times(row)["start"],
    )
    return doc


def apply(
    conn: sqlite3.Connection,
    ctx: Context,
    rid: str,
    clean: dict[str, Any],
    *,
    actor: str,
    reason: str | None,
    origin: str,
) -> TagResult:
    """Add a version with validated `clean` fields, inside the caller's transaction."""
    row = rec.get(conn, rid)
    if row is None:
        raise TagError(f"no recording with id {rid}")
    version, doc = md.current(conn, rid)
    previous = doc or md.empty()
    new = {**(doc or _defaults(row)), **clean}
    changed = [k for k in METADATA_KEYS if new[k] != previous[k]]
    if not changed:
        return TagResult(rid, version, [], doc, row["deadline"])
    overwritten = [k for k in changed if previous[k] is not None]
    if overwritten and not reason:
        was = ", ".join(_was(k, previous[k]) for k in overwritten)
        raise TagError(f"recording {rid}: changing {was} needs a reason: say why (--reason)")
    version = md.add_version(conn, rid, new, changed, actor=actor, reason=reason, origin=origin)
    due, recomputed = _recompute_deadline(
        conn, ctx, row, previous["category"], new["category"], actor
    )
    events.emit(conn, "recording.tagged", recording=rid, version=version, origin=origin)
    return TagResult(rid, version, changed, new, due, recomputed)


def _was(key: str, value: Any) -> str:
    # The message may travel on MQTT (a reply): a ledger-only value is not quoted.
    return key if key in LEDGER_ONLY else f"{key} (now {value!r})"


def _recompute_deadline(
    conn: sqlite3.Connection,
    ctx: Context,
    row: sqlite3.Row,
    old_category: str | None,
    new_category: str | None,
    actor: str,
) -> tuple[str | None, bool]:
    old = row["deadline"]
    end = clock.parse_iso(row["end_corrected"] or row["end"])
    if old_category == new_category or end is None:
        return old, False
    rule = ctx.rule_for(new_category)
    new = clock.iso(compute_deadline(end, rule, ctx.calendar))
    if new == old:
        return old, False
    rec.set_deadline(conn, row["id"], new)
    custody.append(
        conn,
        "deadline.recomputed",
        {
            "old": old,
            "new": new,
            "category": new_category,
            "previous_category": old_category,
            "rule": rule.model_dump(),
        },
        recording_id=row["id"],
        actor=actor,
    )
    return new, True


def select_recordings(
    ctx: Context, serial: str, start_from: datetime | None, start_to: datetime | None
) -> list[str]:
    """Ids of a recorder's recordings that start in [start_from, start_to), oldest first."""
    rows = ctx.ledger.query(
        "SELECT r.id, COALESCE(r.start_corrected, r.start) AS start FROM recordings r"
        " JOIN devices d ON d.id = r.device_id"
        " WHERE d.serial = ?",
        (serial,),
    )
    if not rows and ctx.ledger.one("SELECT 1 FROM devices WHERE serial = ?", (serial,)) is None:
        raise TagError(f"no recorder with serial {serial!r} has been seen by this station")
    picked = []
    for r in rows:
        start = clock.parse_iso(r["start"])
        if start is None:
            continue
        if (start_from is None or start >= start_from) and (start_to is None or start < start_to):
            picked.append((start, r["id"]))
    return [rid for _, rid in sorted(picked)]


def show(ctx: Context, ref: str) -> dict[str, Any]:
    """Current metadata and every version of one recording (`tag --show`)."""
    conn = ctx.ledger.connect()
    try:
        rid = rec.resolve(conn, ref)
    except UnknownRecordingError as exc:
        raise TagError(str(exc)) from None
    version, doc = md.current(conn, rid)
    row = rec.get(conn, rid)
    assert row is not None
    return {
        "id": rid,
        "sha256": row["sha256"],
        "deadline": row["deadline"],
        "deadline_met_at": row["deadline_met_at"],
        "metadata": doc,
        "metadata_version": version,
        "metadata_history": md.history(conn, rid),
    }
