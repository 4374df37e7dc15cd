"""Write-once documents on S3 (custody anchors): conditional create, oldest version on read.

A checkpoint anchor must never be replaced, or a rewritten ledger could be re-anchored to
match. The put is `If-None-Match: *` (S3 answers 412 when the key exists; SeaweedFS >= 4.48
honours it on versioned and Object Lock buckets, checked by
tests/integration/test_anchor_write_once.py). Because a store that ignores the header would
keep a second version silently, the existing versions are listed first and read back after
the put: a key with more than one version is refused here and flagged by `verify`, which
reads only the oldest version.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from agent.archive.s3.client import S3Location, error_code
from agent.archive.s3.partplan import b64, lock_kwargs
from agent.archive.store import LockSpec
from agent.core.errors import AnchorConflictError


class S3Archive(Protocol):
    """What these helpers need of agent.archive.s3.store.S3Archive (no import: no cycle)."""

    loc: S3Location

    @property
    def client(self) -> Any: ...

    def tr(self, exc: BaseException, what: str) -> Exception: ...

    def ref(self, key: str, version_id: str | None) -> str: ...


_PRECONDITION = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def versions_of(store: S3Archive, key: str) -> list[dict[str, Any]]:
    """The versions of exactly `key`, oldest first."""
    out: list[dict[str, Any]] = []
    kw: dict[str, Any] = {"Bucket": store.loc.bucket, "Prefix": key}
    try:
        while True:
            page = store.client.list_object_versions(**kw)
            out += [v for v in page.get("Versions", []) if v.get("Key") == key]
            if not page.get("IsTruncated"):
                break
            kw["KeyMarker"] = page.get("NextKeyMarker")
            kw["VersionIdMarker"] = page.get("NextVersionIdMarker")
    except Exception as exc:
        raise store.tr(exc, f"list versions of {key}") from exc
    # S3 lists a key's versions newest first. LastModified has one-second resolution, so two
    # versions written in the same second tie; version ids are opaque (SeaweedFS's sort
    # newest-first), so the listing order breaks the tie: reverse it, then sort stably.
    out.reverse()
    return sorted(out, key=lambda v: v["LastModified"])


def _read(store: S3Archive, key: str, version: str | None) -> bytes:
    kw: dict[str, Any] = {"Bucket": store.loc.bucket, "Key": key}
    if version and version != "null":
        kw["VersionId"] = version
    try:
        return bytes(store.client.get_object(**kw)["Body"].read())
    except Exception as exc:
        raise store.tr(exc, f"read {key}") from exc


def document_versions(store: S3Archive, relkey: str) -> list[bytes]:
    key = store.loc.key(relkey)
    return [_read(store, key, v.get("VersionId")) for v in versions_of(store, key)]


def _existing(store: S3Archive, key: str, data: bytes) -> str | None:
    """The ref of the oldest version if the key exists with these bytes; raises if it holds
    other bytes; None if there is no version yet."""
    versions = versions_of(store, key)
    if not versions:
        return None
    oldest = versions[0].get("VersionId")
    if _read(store, key, oldest) != data:
        raise AnchorConflictError(
            f"write-once object {key} in bucket {store.loc.bucket} already exists with other "
            "content; it is kept and this version is refused"
        )
    return store.ref(key, oldest)


def put_once(store: S3Archive, relkey: str, data: bytes, lock: LockSpec, content_type: str) -> str:
    key = store.loc.key(relkey)
    ref = _existing(store, key, data)
    if ref is not None:
        return ref  # a retry after a crash between the put and the ledger's note of it
    try:
        store.client.put_object(
            Bucket=store.loc.bucket,
            Key=key,
            Body=data,
            IfNoneMatch="*",
            ChecksumSHA256=b64(hashlib.sha256(data).digest()),
            ContentType=content_type,
            **lock_kwargs(LockSpec(lock.mode, lock.retain_until)),
        )
    except Exception as exc:
        if error_code(exc) not in _PRECONDITION:
            raise store.tr(exc, f"write {key}") from exc
    versions = versions_of(store, key)
    if len(versions) > 1:
        raise AnchorConflictError(
            f"write-once object {key} in bucket {store.loc.bucket} has {len(versions)} "
            "versions: the store did not honour If-None-Match; verify reads the oldest"
        )
    ref = _existing(store, key, data)
    if ref is None:
        raise AnchorConflictError(f"write-once object {key} was not stored")
    return ref


def list_documents(store: S3Archive, relprefix: str) -> list[str]:
    prefix = store.loc.key(relprefix)
    if relprefix.endswith("/") and not prefix.endswith("/"):
        prefix += "/"
    base = store.loc.key("")
    base = f"{base}/" if base else ""
    keys: set[str] = set()
    kw: dict[str, Any] = {"Bucket": store.loc.bucket, "Prefix": prefix}
    try:
        for page in store.client.get_paginator("list_objects_v2").paginate(**kw):
            keys.update(str(o["Key"])[len(base) :] for o in page.get("Contents", []))
    except Exception as exc:
        raise store.tr(exc, f"list {prefix}") from exc
    return sorted(keys)
