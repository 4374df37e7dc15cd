"""Abort multipart uploads that will never complete, once they are older than a set age.

Incomplete uploads hold storage (and cost money on AWS) but are invisible in listings. An
upload is aborted only if it is this station's: its UploadId is in the ledger but its
recording no longer needs it, or its key names one of this station's recordings (the agent
died between starting the upload and recording its UploadId). Uploads the ledger still
resumes, and uploads of other stations sharing the prefix, are left alone.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from agent.archive.s3 import uploads
from agent.archive.s3.client import error_code
from agent.core import clock

if TYPE_CHECKING:
    from agent.config.loader import AgentConfig
    from agent.station.context import Context


class S3Archive(Protocol):
    """What the sweep needs of the S3 store (the store calls abort_abandoned(self))."""

    @property
    def ctx(self) -> Context: ...
    @property
    def cfg(self) -> AgentConfig: ...
    @property
    def loc(self) -> Any: ...
    @property
    def client(self) -> Any: ...

    def tr(self, exc: BaseException, what: str) -> Exception: ...


logger = logging.getLogger(__name__)


def _ours(store: S3Archive, uid: str, key: str) -> bool:
    row = store.ctx.ledger.one(
        "SELECT u.state, r.state AS rstate FROM archive_uploads u"
        " JOIN recordings r ON r.id = u.recording_id WHERE u.upload_id=?",
        (uid,),
    )
    if row is not None:
        return not (row["state"] == "open" and row["rstate"] == "spooled")
    rid = os.path.splitext(key.rsplit("/", 1)[-1])[0]
    return store.ctx.ledger.one("SELECT 1 FROM recordings WHERE id=?", (rid,)) is not None


def abort_abandoned(store: S3Archive) -> int:
    cutoff = clock.now() - timedelta(hours=store.cfg.archive.abandoned_upload_hours)
    prefix = f"{store.loc.prefix}/" if store.loc.prefix else ""
    kw = {"Bucket": store.loc.bucket, "Prefix": prefix}
    aborted = 0
    while True:
        try:
            resp = store.client.list_multipart_uploads(**kw)
        except Exception as exc:
            raise store.tr(exc, f"list incomplete uploads in bucket {store.loc.bucket}") from exc
        for u in resp.get("Uploads", []):
            uid, key = str(u["UploadId"]), str(u["Key"])
            if u["Initiated"] > cutoff or not _ours(store, uid, key):
                continue
            try:
                store.client.abort_multipart_upload(Bucket=store.loc.bucket, Key=key, UploadId=uid)
            except Exception as exc:
                if error_code(exc) != "NoSuchUpload":
                    raise store.tr(exc, f"abort upload {uid} of {key}") from exc
            with store.ctx.ledger.tx() as conn:
                uploads.set_state(conn, uid, "aborted")
            logger.info("aborted abandoned upload %s of %s (started %s)", uid, key, u["Initiated"])
            aborted += 1
        if not resp.get("IsTruncated"):
            return aborted
        kw["KeyMarker"] = resp.get("NextKeyMarker", "")
        kw["UploadIdMarker"] = resp.get("NextUploadIdMarker", "")
