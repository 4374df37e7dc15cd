"""Is the object really there? Verification of a stored S3 object before `archived`.

The store's own checksum (for multipart, the COMPOSITE SHA-256 of the parts, computed locally
from the same parts and compared), the size, our SHA-256 in the object metadata, and the
Object Lock retention and legal hold must all match; a store that reports no checksum gets a
full read-back and re-hash instead, so nothing is ever taken on trust.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from agent.archive.s3.client import error_code
from agent.archive.store import LockSpec
from agent.core import envelope, envstream, rehash
from agent.core.errors import ArchiveVerifyError

Translate = Callable[[BaseException, str], Exception]


def head(client: Any, bucket: str, key: str, version_id: str | None, tr: Translate) -> Any:
    kw: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
    if version_id:
        kw["VersionId"] = version_id
    try:
        return client.head_object(**kw)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NoSuchVersion", "NotFound"):
            raise ArchiveVerifyError(
                f"the store does not hold {key} (version {version_id}) after the upload"
            ) from exc
        raise tr(exc, f"check {key}") from exc


def read_back(
    client: Any,
    bucket: str,
    key: str,
    version_id: str | None,
    tr: Translate,
    keys: envelope.Keyring | None = None,
) -> str:
    """Download the object and return the SHA-256 of its plaintext (decrypted with `keys` if
    it is an envelope: archive.encryption = "client")."""
    kw: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kw["VersionId"] = version_id
    try:
        body = client.get_object(**kw)["Body"]
        digest, _ = rehash.sha256_stream(envstream.plain_reader(body, keys, f"object {key}"))
    except Exception as exc:
        raise tr(exc, f"read back {key}") from exc
    return digest


def _lock_problems(client: Any, bucket: str, key: str, h: Any, lock: LockSpec) -> list[str]:
    problems: list[str] = []
    vid = h.get("VersionId")
    if lock.mode and lock.retain_until:
        mode, until = h.get("ObjectLockMode"), h.get("ObjectLockRetainUntilDate")
        if mode is None:  # some stores only answer the dedicated call
            try:
                r = client.get_object_retention(Bucket=bucket, Key=key, VersionId=vid)
                mode, until = r["Retention"]["Mode"], r["Retention"]["RetainUntilDate"]
            except Exception:  # noqa: BLE001 - reported as missing retention below
                mode, until = None, None
        if mode != lock.mode:
            problems.append(f"retention mode is {mode}, expected {lock.mode}")
        elif not isinstance(until, datetime) or until < lock.retain_until - timedelta(seconds=1):
            problems.append(f"retained until {until}, expected {lock.retain_until.isoformat()}")
    if lock.legal_hold:
        status = h.get("ObjectLockLegalHoldStatus")
        if status is None:
            try:
                status = client.get_object_legal_hold(Bucket=bucket, Key=key, VersionId=vid)[
                    "LegalHold"
                ]["Status"]
            except Exception:  # noqa: BLE001
                status = None
        if status != "ON":
            problems.append(f"legal hold is {status}, expected ON")
    return problems


def verify_object(
    client: Any,
    bucket: str,
    key: str,
    version_id: str | None,
    *,
    sha256: str,
    size: int,
    checksum: str | None,
    lock: LockSpec,
    tr: Translate,
    keys: envelope.Keyring | None = None,
) -> str | None:
    """Raise ArchiveVerifyError unless the stored version is exactly ours; returns its checksum.

    `checksum` is the expected S3 checksum (full-object SHA-256 base64, or COMPOSITE "...-N").
    """
    h = head(client, bucket, key, version_id, tr)
    problems: list[str] = []
    if int(h.get("ContentLength", -1)) != size:
        problems.append(f"size is {h.get('ContentLength')}, expected {size}")
    meta_sha = (h.get("Metadata") or {}).get("sha256")
    if meta_sha != sha256:
        problems.append(f"metadata sha256 is {meta_sha}, expected {sha256}")
    stored = h.get("ChecksumSHA256")
    if checksum is not None and stored is not None and stored != checksum:
        problems.append(f"store checksum {stored} differs from the local {checksum}")
    problems += _lock_problems(client, bucket, key, h, lock)
    if not problems and (stored is None or checksum is None):
        # No checksum from the store (or none to compare): only the bytes themselves prove it.
        actual = read_back(client, bucket, key, h.get("VersionId"), tr, keys)
        if actual != sha256:
            problems.append(f"read-back SHA-256 {actual} differs from {sha256}")
    if problems:
        raise ArchiveVerifyError(
            f"stored object {key} (version {h.get('VersionId')}) failed verification: "
            + "; ".join(problems)
        )
    return str(stored) if stored is not None else None
