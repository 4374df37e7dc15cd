"""Re-wrapping the data keys of `archive.encryption = "client"` objects (`keys encryption
rotate` and `recover`).

An S3 object under Object Lock cannot be rewritten, so its header keeps the slots it was
uploaded with: the station key of that day and the agency's recovery key. When the station key
is rotated or recovered, each such object's 1 KiB header is read (a ranged GET), its data key
opened with the old key (or the recovery key) and wrapped for the new one, and the new header
is kept in the ledger (`kv`, `archive.slots.<file id>`), committed with the custody event of
the rotation. Reading an object (audit, verify, export, read-back) tries those slots after the
object's own, so the station keeps reading its archive after the old key is gone.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from agent.core import envelope
from agent.core.errors import AgentError
from agent.station.context import Context

PREFIX = "archive.slots."


def client_objects(ctx: Context) -> list[tuple[str, str]]:
    """(recording id, ref) of every object archived as an envelope, as custody recorded it."""
    latest: dict[str, dict[str, Any]] = {}
    for r in ctx.ledger.query(
        "SELECT recording_id, payload FROM custody WHERE type='recording.archived'"
        " AND recording_id IS NOT NULL ORDER BY seq"
    ):
        latest[str(r["recording_id"])] = json.loads(r["payload"])
    out = []
    for rid, p in latest.items():
        enc = p.get("encryption")
        if isinstance(enc, dict) and enc.get("mode") == "client" and p.get("ref"):
            out.append((rid, str(p["ref"])))
    return out


def read_header(store: Any, ref: str) -> bytes:
    """The first HEADER_SIZE bytes of an archived object (a ranged GET)."""
    bucket, key, version = store._parse(ref)
    kw: dict[str, Any] = {"Bucket": bucket, "Key": key}
    kw["Range"] = f"bytes=0-{envelope.HEADER_SIZE - 1}"
    if version:
        kw["VersionId"] = version
    try:
        return bytes(store.client.get_object(**kw)["Body"].read())
    except Exception as exc:
        raise store.tr(exc, f"read the envelope header of {key}") from exc


def keyring(ctx: Context, base: envelope.Keyring | None) -> envelope.Keyring | None:
    """`base` plus the slots re-wrapped for archived objects (None if there is neither)."""
    rows = ctx.ledger.query("SELECT key, value FROM kv WHERE key LIKE 'archive.slots.%'")
    if not rows:
        return base
    extra = {}
    for r in rows:
        h = envelope.parse_header(base64.b64decode(r["value"]), str(r["key"]))
        extra[h.file_id] = h.slots
    base = base or envelope.Keyring()
    return envelope.Keyring(base.keks, base.recovery, extra)


def rewrap_archived(
    ctx: Context, store: Any, opener: envelope.Keyring, to: envelope.Recipients
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """New slots for every client-encrypted object ({kv key: header}), and the failures."""
    keys = keyring(ctx, opener) or opener
    slots: dict[str, str] = {}
    failed: list[tuple[str, str]] = []
    for rid, ref in client_objects(ctx):
        try:
            raw = envelope.rewrap_bytes(read_header(store, ref), keys, to, f"archived {ref}")
        except (AgentError, OSError) as exc:
            failed.append((rid, str(exc)))
            continue
        file_id = envelope.parse_header(raw, ref).file_id
        slots[PREFIX + file_id.hex()] = base64.b64encode(raw).decode("ascii")
    return slots, failed
