"""Small documents the archive keeps next to the evidence: sidecars, case index, anchors.

* Sidecar (`<object key>.meta.json`): the recording's description and current tags. Tagging
  writes a new version of the sidecar, never the locked video, so every tag version stays.
* Case index (`_cases/<case>/<recording id>.json`): keeps a case's recordings together
  whatever officer, day or recorder they came from (同一执法对象...集中存储). A recording moved
  to another case gets a `removed` version in the old folder.
* Anchors (`_custody/<station>/...`): signed custody checkpoints and the station public key,
  write-once, so a rewritten local ledger is caught against an outside copy.
A tag that adds a case number also puts a legal hold on the video; a category with a longer
retention extends it. Neither ever shortens a lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from cryptography.hazmat.primitives import serialization

from agent.archive import encinfo, segments
from agent.archive import objects as archive_objects
from agent.archive.store import LockSpec, Store, lock_for
from agent.core import clock
from agent.core.errors import AnchorConflictError
from agent.ledger import custody, stationkey
from agent.ledger.recordings import effective_times
from agent.rules import archive_keys
from agent.station.context import Context
from agent.tagging import metadata as md
from agent.tagging.context_fields import public

logger = logging.getLogger(__name__)

SIDECAR_SCHEMA = "evidence-agent/sidecar/1"
CASE_SCHEMA = "evidence-agent/case-index/1"
CHECKPOINT_SCHEMA = "evidence-agent/checkpoint/1"


def _row(ctx: Context, rid: str) -> sqlite3.Row | None:
    return ctx.ledger.one(
        "SELECT r.*, d.serial, o.store, o.bucket, o.key, o.version_id, o.checksum,"
        " o.retain_mode, o.retain_until, o.legal_hold, o.sidecar_version, o.case_number"
        " FROM recordings r JOIN devices d ON d.id = r.device_id"
        " JOIN archive_objects o ON o.recording_id = r.id WHERE r.id = ?",
        (rid,),
    )


def _stored_lock(row: sqlite3.Row) -> LockSpec:
    return LockSpec(
        row["retain_mode"], clock.parse_iso(row["retain_until"]), bool(row["legal_hold"])
    )


def sidecar_doc(ctx: Context, row: sqlite3.Row, meta: dict[str, Any], version: int) -> dict:
    lock = _stored_lock(row)
    return {
        "schema": SIDECAR_SCHEMA,
        "recording_id": row["id"],
        "hash_alg": row["hash_alg"],
        "sha256": row["sha256"],
        "size": row["size"],
        "object": {
            "bucket": row["bucket"],
            "key": row["key"],
            "version_id": row["version_id"],
            "checksum": row["checksum"],
            "encryption": encinfo.recorded(ctx, row["id"]),  # key ids of a "client" object
        },
        "station": ctx.station_id,
        "serial": row["serial"],
        "unit": row["unit_id"],
        "officer": row["officer_id"],
        "source_path": row["source_path"],
        **effective_times(row),
        "duration_s": row["duration_s"],
        "playable": None if row["playable"] is None else bool(row["playable"]),
        "deadline": row["deadline"],
        "deadline_met_at": row["deadline_met_at"],
        "archived_at": row["archived_at"],
        "metadata": public(meta),  # the party (执法对象) stays in the ledger
        "metadata_version": version,
        "retention": {
            "mode": lock.mode,
            "retain_until": clock.iso(lock.retain_until),
            "legal_hold": lock.legal_hold,
        },
        "written_at": clock.iso(clock.now()),
    }


def ship_sidecar(ctx: Context, store: Store, rid: str) -> bool:
    """Write the recording's sidecar (and case index entries, locks) if its tags moved on."""
    row = _row(ctx, rid)
    if row is None:
        return False
    version, meta = md.stored(ctx.ledger.connect(), rid)
    if row["sidecar_version"] is not None and row["sidecar_version"] >= version:
        return False
    lock = _stored_lock(row)
    wanted = lock_for(ctx.cfg, meta, clock.parse_iso(row["archived_at"]))
    stronger = LockSpec(
        wanted.mode if _later(wanted, lock) else None,
        wanted.retain_until if _later(wanted, lock) else None,
        wanted.legal_hold and not lock.legal_hold,
    )
    if stronger.legal_hold or stronger.retain_until:
        store.apply_lock(row["archive_ref"], stronger)
        lock = LockSpec(
            stronger.mode or lock.mode,
            stronger.retain_until or lock.retain_until,
            lock.legal_hold or stronger.legal_hold,
        )
        _save_lock(ctx, rid, lock)
        row = _row(ctx, rid)
        assert row is not None
    sidecar = store.sidecar_relkey(row["key"], rid)
    store.put_document(sidecar, sidecar_doc(ctx, row, meta, version), lock)
    case = str(meta.get("case_number") or "") or None
    _case_index(ctx, store, row, case, sidecar, version, lock)
    with ctx.ledger.tx() as conn:
        archive_objects.record_sidecar(conn, rid, version, clock.iso(clock.now()), case)
    return True


def _later(wanted: LockSpec, have: LockSpec) -> bool:
    if wanted.retain_until is None:
        return False
    return have.retain_until is None or wanted.retain_until > have.retain_until


def _save_lock(ctx: Context, rid: str, lock: LockSpec) -> None:
    with ctx.ledger.tx() as conn:
        archive_objects.record_lock(conn, rid, lock)
        custody.append(
            conn,
            "archive.lock_extended",
            {
                "retain_mode": lock.mode,
                "retain_until": clock.iso(lock.retain_until),
                "legal_hold": lock.legal_hold,
            },
            recording_id=rid,
        )


def _case_index(
    ctx: Context,
    store: Store,
    row: sqlite3.Row,
    case: str | None,
    sidecar: str,
    version: int,
    lock: LockSpec,
) -> None:
    entry = {
        "schema": CASE_SCHEMA,
        "recording_id": row["id"],
        "object_key": row["key"],
        "version_id": row["version_id"],
        "sha256": row["sha256"],
        "sidecar_key": sidecar,
        "metadata_version": version,
        "station": ctx.station_id,
        "written_at": clock.iso(clock.now()),
    }
    old = row["case_number"]
    if old and old != case:
        key = archive_keys.case_index_key("", old, row["id"])
        store.put_document(key, {**entry, "case_number": old, "removed": True}, lock)
    if case:
        key = archive_keys.case_index_key("", case, row["id"])
        store.put_document(key, {**entry, "case_number": case, "removed": False}, lock)


def sync_sidecars(ctx: Context, store: Store, limit: int = 50) -> int:
    """Ship sidecars that are missing or older than the recording's current tags."""
    sql = (
        "SELECT recording_id FROM archive_objects WHERE sidecar_version IS NULL"
        " OR sidecar_version < (SELECT MAX(version) FROM metadata_versions m"
        " WHERE m.recording_id = archive_objects.recording_id)"
    )
    n = 0
    for r in ctx.ledger.query(sql + " LIMIT ?", (limit,)):
        n += ship_sidecar(ctx, store, str(r["recording_id"]))
    return n


def anchor_bytes(doc: dict[str, Any]) -> bytes:
    """The stored form of an anchor (as put_document writes JSON documents)."""
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


def ship_anchors(ctx: Context, store: Store) -> int:
    """Ship the station public key once and every signed checkpoint not yet shipped."""
    shipped = 0
    pub = ctx.key.public_key()
    fp = stationkey.fingerprint(pub)
    lock = lock_for(ctx.cfg, {})
    if ctx.ledger.get_kv("archive.pubkey_shipped") != fp:
        pem = pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        store.put_once(
            archive_keys.pubkey_key("", ctx.station_id, fp), pem, lock, "application/x-pem-file"
        )
        with ctx.ledger.tx() as conn:
            ctx.ledger.set_kv(conn, "archive.pubkey_shipped", fp)
        shipped += 1
    done = int(ctx.ledger.get_kv("archive.checkpoint_shipped") or 0)
    for cp in ctx.ledger.query(
        "SELECT * FROM checkpoints WHERE seq > ? ORDER BY seq LIMIT 100", (done,)
    ):
        doc = {
            "schema": CHECKPOINT_SCHEMA,
            "station": ctx.station_id,
            "statement": cp["statement"],
            "signature": cp["signature"],
            "key_fingerprint": cp["key_fingerprint"],
        }
        if cp["sm2_signature"] is not None:  # crypto.suite = "sm": the SM2 co-signature too
            doc |= {"sm2_signature": cp["sm2_signature"], "sm2_public_key": cp["sm2_public_key"]}
        relkey = archive_keys.checkpoint_key("", ctx.station_id, int(cp["head_seq"]))
        conflict = None
        try:
            # Write-once: an anchor is never replaced, so a rewritten ledger cannot re-anchor.
            store.put_once(relkey, anchor_bytes(doc), lock, "application/json; charset=utf-8")
        except AnchorConflictError as exc:
            # The archive already anchors this event with other content (a ledger restored
            # from an older backup, or rewritten). The archived anchor stays and `verify`
            # reports the difference; shipping goes on so sidecars are not held up.
            logger.error("custody anchor %s not written: %s", relkey, exc)
            conflict = str(exc)
        with ctx.ledger.tx() as conn:
            if conflict:
                custody.append(conn, "anchor.conflict", {"key": relkey, "reason": conflict})
            ctx.ledger.set_kv(conn, "archive.checkpoint_shipped", str(cp["seq"]))
        shipped += 1
    # The events themselves, after the checkpoints that name them (a segment may run past
    # the newest checkpoint; the next checkpoint covers it).
    shipped += segments.ship_segments(ctx, store, anchor_bytes)
    return shipped
