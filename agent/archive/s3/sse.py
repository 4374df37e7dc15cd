"""`archive.encryption = "server"` (the default): plaintext objects under the store's SSE.

Each upload asks for SSE-S3 (`ServerSideEncryption=AES256` on the put or on the multipart
create), so the agency's evidence platform reads plain objects and the store keeps them
encrypted on its disks. When such an upload fails, a probe (a multipart upload started with
SSE, and failing that without it, aborted at once) tells a store that refuses SSE from one that
is down: a refusing store (SeaweedFS 4.48 without an SSE key configuration answers
InternalError) gets the same upload without SSE, and one warning naming `archive.encryption`;
SSE is not asked for again until the daemon restarts. A store that accepts SSE but does not
report it in HEAD is recorded as such. What was used goes into the `recording.archived`
custody event (`encryption.mode`: "sse-s3", "sse-kms" or "none").
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.archive.s3.client import error_code
from agent.archive.s3.verify import head
from agent.archive.store import ObjectSpec, Stored
from agent.core.errors import ArchiveError, ArchiveVerifyError, ChecksumRejectedError

S3Archive = Any  # agent.archive.s3.store.S3Archive, which imports this module

logger = logging.getLogger(__name__)

REQUEST = {"ServerSideEncryption": "AES256"}
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "503", "RequestTimeout", "Throttling",
              "ThrottlingException", "RequestTimeTooSkewed", "InvalidAccessKeyId",
              "SignatureDoesNotMatch", "NoSuchBucket", "ExpiredToken"}  # fmt: skip
_MODES = {"AES256": "sse-s3", "aws:kms": "sse-kms", "aws:kms:dsse": "sse-kms"}


def put(store: S3Archive, src: Path, spec: ObjectSpec) -> Stored:
    """Upload with SSE requested; without it (once warned) if the store refuses it."""
    if store.sse_refused:
        return _plain(store, src, spec)
    try:
        stored = store.put_plain(src, spec, REQUEST)
    except (ArchiveVerifyError, ChecksumRejectedError):
        raise
    except ArchiveError as exc:
        # The store is down, or it refuses SSE: only a probe that asks for nothing else tells
        # them apart (a passing fault must not turn SSE off for good). A throttle, a lost
        # connection, credentials, bucket or clock are not a refusal: they back off as ever.
        if _transient(exc) or not refuses_sse(store):
            raise
        store.sse_refused = True
        stored = _plain(store, src, spec)
        logger.warning(
            "archive store %s refused server-side encryption (%s): objects are uploaded "
            'without it from now on. Set archive.encryption = "client" to keep the archive '
            "encrypted on any store, or enable SSE-S3 on the store (docs/security.md)",
            store.cfg.archive.endpoint_url or "AWS S3",
            exc,
        )
        return stored
    h = head(store.client, store.loc.bucket, stored.key, stored.version_id, store.tr)
    mode = _MODES.get(str(h.get("ServerSideEncryption")), "none")
    if mode == "none" and not store.sse_silent:
        store.sse_silent = True
        logger.warning(
            "archive store %s accepted server-side encryption but does not report it for %s: "
            'recorded as not encrypted; archive.encryption = "client" encrypts on the station',
            store.cfg.archive.endpoint_url or "AWS S3",
            stored.key,
        )
    return replace(stored, encryption={"mode": mode, "requested": "sse-s3"})


def _transient(exc: BaseException) -> bool:
    code = error_code(exc.__cause__) if exc.__cause__ is not None else None
    return code is None or code in _TRANSIENT


def refuses_sse(store: S3Archive) -> bool:
    """Does the store refuse SSE-S3 itself? A multipart upload is started under a probe key
    with SSE, and failing that without it; whichever starts is aborted at once (nothing is
    stored). True only when the plain one starts and the SSE one does not."""
    c, b = store.client, store.loc.bucket
    key = store.loc.key(f"_probe/{store.ctx.station_id}/sse-{uuid.uuid4().hex}")
    refused = False
    try:
        uid = c.create_multipart_upload(Bucket=b, Key=key, **REQUEST)["UploadId"]
    except Exception:  # noqa: BLE001 - refused, or the store is down: the plain try tells
        try:
            uid = c.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
        except Exception:  # noqa: BLE001 - the store fails anyway: not a refusal
            return False
        refused = True
    with contextlib.suppress(Exception):  # no part was sent: a leftover holds no data
        c.abort_multipart_upload(Bucket=b, Key=key, UploadId=uid)
    return refused


def _plain(store: S3Archive, src: Path, spec: ObjectSpec) -> Stored:
    stored = store.put_plain(src, spec, {})
    info: dict[str, Any] = {"mode": "none", "requested": "sse-s3", "refused": True}
    return replace(stored, encryption=info)
