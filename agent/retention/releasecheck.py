"""Ask the archive store, immediately before the wipe gate erases a source, whether it still
holds the recording: the object's size and checksum, and Object Lock retention that still
holds for at least `archive.release_retention_margin_days`.

A verification recorded in the ledger is a past fact; the store can lose or replace an object
since (a lifecycle rule, an operator, a broken disk, a governance-mode retention shortened).
Any doubt (no answer, an error, a mismatch, retention missing or too short) keeps the source.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from agent.archive.store import Store
from agent.config.loader import AgentConfig
from agent.core import clock
from agent.core.errors import AgentError

logger = logging.getLogger(__name__)


def store_refusal(cfg: AgentConfig, store: Store | None, row: sqlite3.Row) -> str | None:
    """None when the store confirms the archived object right now, else why not."""
    ref = row["archive_ref"]
    if not ref:
        return "no archive reference recorded"
    if store is None:
        return "the archive store was not asked (none open); keeping the source"
    try:
        store.check(ref, str(row["sha256"]), int(row["size"]))
    except InterruptedError:
        return "shutting down before the store answered"
    except (AgentError, OSError) as exc:
        return f"the store no longer confirms {ref}: {exc}"
    if store.scheme != "s3" or not cfg.archive.object_lock:
        return None  # a local archive is read-only files; a store without Object Lock has none
    return _retention_refusal(cfg, store, ref)


def _retention_refusal(cfg: AgentConfig, store: Any, ref: str) -> str | None:
    margin = timedelta(days=cfg.archive.release_retention_margin_days)
    try:
        until = retained_until(store, ref)
    except (AgentError, OSError) as exc:
        return f"the store did not say how long {ref} is retained: {exc}"
    needed = clock.now() + margin
    if until is None:
        return f"the store reports no retention for {ref}"
    if until < needed:
        return (
            f"{ref} is retained only until {until.isoformat()}, less than "
            f"archive.release_retention_margin_days ({margin.days} d) from now"
        )
    return None


def retained_until(store: Any, ref: str) -> datetime | None:
    """The Object Lock retain-until date the store reports for this version (None: none)."""
    from agent.archive.s3.store import parse_ref
    from agent.archive.s3.verify import head

    bucket, key, version = parse_ref(ref)
    h = head(store.client, bucket, key, version, store.tr)
    until = h.get("ObjectLockRetainUntilDate")
    if until is None:
        try:
            r = store.client.get_object_retention(
                Bucket=bucket, Key=key, VersionId=h.get("VersionId")
            )
            until = r["Retention"]["RetainUntilDate"]
        except Exception as exc:  # noqa: BLE001 - no retention is an answer too
            logger.debug("no retention for %s: %s", ref, exc)
            return None
    return until if isinstance(until, datetime) else None
