"""The S3 archive store (`s3://bucket/prefix`): WORM objects under Object Lock.

Put = check the bucket (exists, Object Lock, versioning, clock), re-hash the spool copy while
planning its parts, upload (one PUT for small files, resumable multipart for large ones) with
retention and legal hold set at upload, then verify before the caller may mark the recording
`archived`. Works with AWS S3, SeaweedFS, MinIO and Ceph; boto3 is imported lazily.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import posixpath
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

from agent.archive.s3 import anchors, bucket, rekey, sealed, sse
from agent.archive.s3.abandon import abort_abandoned
from agent.archive.s3.client import error_code, make_client, parse_url, translate
from agent.archive.s3.multipart import MultipartUploader
from agent.archive.s3.partplan import Part, b64, choose_part_size, lock_kwargs, plan, read_small
from agent.archive.s3.verify import verify_object
from agent.archive.store import LockSpec, ObjectSpec, Stored
from agent.archive.throttle import ThrottledBody, TokenBucket
from agent.core import clock, envstream
from agent.core.errors import (
    AgentError,
    ArchiveAuthError,
    CredentialsError,
    IntegrityError,
    SpoolIntegrityError,
)
from agent.rules import archive_keys
from agent.station.context import Context

logger = logging.getLogger(__name__)

PREFLIGHT_SECONDS = 600.0  # re-check the bucket this often (and after any failure)


def parse_ref(ref: str) -> tuple[str, str, str | None]:
    """`s3://bucket/key?versionId=V` → (bucket, key, version)."""
    parts = urlsplit(ref)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{ref!r} is not an s3:// archive ref")
    version = parse_qs(parts.query).get("versionId", [None])[0]
    return parts.netloc, parts.path.lstrip("/"), version


class S3Archive:
    scheme = "s3"
    off_station = True  # a remote store is off the station by construction

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.loc = parse_url(ctx.cfg.archive_url)
        self.limiter = TokenBucket(None, ctx.stop)
        self._client: Any = None
        self._checked_at: float | None = None
        self._planner: ThreadPoolExecutor | None = None
        self._plans: dict[tuple[Path, int], tuple[tuple[int, ...], Future[Any]]] = {}
        self._plans_lock = threading.Lock()
        self.sse_refused = self.sse_silent = False  # agent.archive.s3.sse warns once each

    # --- client --------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = make_client(self.cfg)
            except CredentialsError as exc:
                raise ArchiveAuthError(str(exc)) from exc
            events = self._client.meta.events
            for op in ("UploadPart", "PutObject"):
                events.register(f"before-send.s3.{op}", self._throttle_body)
        return self._client

    def _throttle_body(self, request: Any, **_: Any) -> None:
        # Swap the body for a throttled reader just before it goes on the wire (after
        # signing), so the signer's pass over the bytes is not charged against the cap.
        if self.limiter.rate is None:
            return
        body = request.body
        if isinstance(body, io.BytesIO):
            body = body.getvalue()
        if isinstance(body, bytes | bytearray) and body:
            request.body = ThrottledBody(bytes(body), self.limiter)

    def tr(self, exc: BaseException, what: str) -> Exception:
        if self.ctx.stop.is_set():
            return InterruptedError(f"{what}: stopping")  # not a store fault: we hung up
        self._checked_at = None  # any failure: check the bucket again before the next put
        err = translate(exc, self.cfg, what)
        if isinstance(err, ArchiveAuthError):
            self._client = None  # re-read the credentials: the operator may have fixed them
        return err

    def preflight(self) -> None:
        """Bucket exists, credentials work, Object Lock (if required) is on, clock agrees."""
        if self._checked_at is not None and time.monotonic() - self._checked_at < PREFLIGHT_SECONDS:
            return
        b = self.loc.bucket
        try:
            resp = self.client.head_bucket(Bucket=b)
        except Exception as exc:
            raise self.tr(exc, f"open bucket {b}") from exc
        bucket.check_clock(resp, self.cfg.archive.endpoint_url or "AWS S3")
        if self.cfg.archive.object_lock:
            bucket.require_object_lock(self.client, b, self.tr)
        self._checked_at = time.monotonic()

    # --- put -----------------------------------------------------------------------------

    def object_key(self, spec: ObjectSpec) -> str:
        """Full key of the recording (see agent.rules.archive_keys)."""
        rel = archive_keys.recording_key(
            "",
            recording_id=spec.recording_id,
            unit=spec.unit,
            serial=spec.serial,
            start=spec.start,
            source_path=spec.source_path,
            timezone=self.cfg.station.timezone,
        )
        return self.loc.key(rel)

    def ref(self, key: str, version_id: str | None) -> str:
        v = f"?versionId={version_id}" if version_id else ""
        return f"s3://{self.loc.bucket}/{key}{v}"

    def _metadata(self, spec: ObjectSpec) -> dict[str, str]:
        # S3 user metadata travels as HTTP headers: ASCII ids only, never names or tags.
        return {
            "sha256": spec.sha256,
            "hash-alg": "sha256",
            "recording-id": spec.recording_id,
            "station": self.ctx.station_id,
        }

    def put(self, src: Path, spec: ObjectSpec) -> Stored:
        """Upload per archive.encryption: the envelope ("client") or plaintext under SSE."""
        if self.cfg.archive.encryption == "client":
            return sealed.put(self, src, spec)
        return sse.put(self, src, spec)

    def put_plain(self, src: Path, spec: ObjectSpec, extra: dict[str, str]) -> Stored:
        self.preflight()
        key = self.object_key(spec)
        a = self.cfg.archive
        uploader = MultipartUploader(
            self.client, self.ctx.ledger, self.loc.bucket, a.parallel_parts, self.ctx.stop, self.tr
        )
        resumable = uploader.open_upload(spec.recording_id)
        if spec.size < a.multipart_threshold_bytes and resumable is None:
            version = self._put_single(key, spec, read_small(src, spec, self.ctx.keyring), **extra)
            checksum, lock = b64(bytes.fromhex(spec.sha256)), spec.lock
        else:
            part_size = (
                int(resumable["part_size"])
                if resumable is not None
                else choose_part_size(spec.size, a.part_size_bytes)
            )
            sha, parts = self._planned(src, spec.size, part_size)
            self._same(src, spec, sha)
            uploader.keys, uploader.create_extra = self.ctx.keyring, extra
            done = uploader.upload(src, spec, key, part_size, parts, self._metadata(spec))
            version, checksum, lock = done.version_id, done.checksum, done.lock
        stored = verify_object(
            self.client,
            self.loc.bucket,
            key,
            version,
            sha256=spec.sha256,
            size=spec.size,
            checksum=checksum,
            lock=lock,
            tr=self.tr,
        )
        return Stored(self.ref(key, version), key, self.loc.bucket, version, stored, lock)

    def prepare(self, src: Path, size: int) -> None:
        """Plan the next recording's parts in the background while this one uploads.

        Safe to use later: the part checksums come from that read, so bytes that changed
        since are rejected by the store when they are sent.
        """
        part_size = choose_part_size(size, self.cfg.archive.part_size_bytes)
        if (
            size < self.cfg.archive.multipart_threshold_bytes
            or self.cfg.archive.encryption != "server"
        ):
            return
        try:
            st = src.stat()
        except OSError:
            return
        with self._plans_lock:
            if (src, part_size) in self._plans:
                return
            if self._planner is None:
                self._planner = ThreadPoolExecutor(1, thread_name_prefix="plan-next")
            while len(self._plans) >= 4:  # planned but never asked for (order changed)
                self._plans.pop(next(iter(self._plans)))
            future = self._planner.submit(plan, src, size, part_size, self.ctx.keyring)
            self._plans[(src, part_size)] = (_identity(st), future)

    def _planned(self, src: Path, size: int, part_size: int) -> tuple[str, list[Part]]:
        with self._plans_lock:
            ahead = self._plans.pop((src, part_size), None)
        if ahead is not None:
            ident, future = ahead
            try:
                result = future.result()
                if _identity(src.stat()) == ident:
                    return result
            except (OSError, AgentError):
                pass  # plan again below, and report what that finds
        return plan(src, size, part_size, self.ctx.keyring)

    @staticmethod
    def _same(src: Path, spec: ObjectSpec, sha: str) -> None:
        if sha != spec.sha256:
            raise SpoolIntegrityError(
                f"spool copy {src} of recording {spec.recording_id} no longer matches its "
                f"SHA-256 (ledger {spec.sha256}, now {sha}); it is not archived"
            )

    def _put_single(self, key: str, spec: ObjectSpec, data: bytes, **extra: Any) -> str | None:
        kw = {"ChecksumSHA256": b64(bytes.fromhex(spec.sha256)), "Metadata": self._metadata(spec)}
        try:
            resp = self.client.put_object(
                Bucket=self.loc.bucket,
                Key=key,
                Body=data,
                ContentLength=len(data),
                ContentType="application/octet-stream",
                **lock_kwargs(spec.lock),
                **{**kw, **extra},
            )
        except Exception as exc:
            raise self.tr(exc, f"upload {key}") from exc
        return resp.get("VersionId")

    # --- reading and checking ------------------------------------------------------------

    def _parse(self, ref: str) -> tuple[str, str, str | None]:
        """`parse_ref`, refused unless the ref names this bucket under this prefix once
        normalised (no `..`, `.` or empty segments)."""
        bucket, key, version = parse_ref(ref)
        prefix = f"{self.loc.prefix}/" if self.loc.prefix else ""
        if (
            bucket != self.loc.bucket
            or not key.startswith(prefix)
            or posixpath.normpath("/" + key) != "/" + key
        ):
            raise IntegrityError(f"archive ref {ref} is outside the archive {self.cfg.archive_url}")
        return bucket, key, version

    def check(self, ref: str, sha256: str, size: int) -> None:
        bucket, key, version = self._parse(ref)
        row = self.ctx.ledger.one(
            "SELECT checksum, retain_mode, retain_until, legal_hold, size FROM archive_objects"
            " WHERE key=? AND (version_id IS ? OR version_id=?)",
            (key, version, version),
        )
        lock = LockSpec()
        if row is not None and row["retain_mode"]:
            until = clock.parse_iso(row["retain_until"])
            # Only what must still hold today: a lapsed retention is not a broken archive.
            if until is not None and until > clock.now():
                lock = LockSpec(row["retain_mode"], until, bool(row["legal_hold"]))
        verify_object(
            self.client,
            bucket,
            key,
            version,
            sha256=sha256,
            size=int(row["size"]) if row is not None else size,  # the envelope's, if "client"
            checksum=row["checksum"] if row is not None else None,
            lock=lock,
            tr=self.tr,
            keys=rekey.keyring(self.ctx, self.ctx.keyring),
        )

    @contextmanager
    def open_read(self, ref: str) -> Iterator[BinaryIO]:
        bucket, key, version = self._parse(ref)
        kw: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            kw["VersionId"] = version
        try:
            body = self.client.get_object(**kw)["Body"]
        except Exception as exc:
            raise self.tr(exc, f"read {key}") from exc
        try:  # the plaintext, through the envelope of an archive.encryption = "client" object
            keys = rekey.keyring(self.ctx, self.ctx.keyring)
            yield envstream.plain_reader(body, keys, f"archived object {key}")  # type: ignore[misc]
        finally:
            body.close()

    # --- documents, locks, store housekeeping --------------------------------------------

    def put_bytes(self, relkey: str, data: bytes, lock: LockSpec, content_type: str) -> str:
        key = self.loc.key(relkey)
        try:
            resp = self.client.put_object(
                Bucket=self.loc.bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=b64(hashlib.sha256(data).digest()),
                ContentType=content_type,
                **lock_kwargs(LockSpec(lock.mode, lock.retain_until)),
            )
        except Exception as exc:
            raise self.tr(exc, f"write {key}") from exc
        return self.ref(key, resp.get("VersionId"))

    def put_document(self, relkey: str, doc: dict[str, Any], lock: LockSpec) -> str:
        body = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
        return self.put_bytes(relkey, body, lock, "application/json; charset=utf-8")

    def read_document(self, relkey: str) -> bytes | None:
        key = self.loc.key(relkey)
        try:
            return bytes(self.client.get_object(Bucket=self.loc.bucket, Key=key)["Body"].read())
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self.tr(exc, f"read {key}") from exc

    def put_once(self, relkey: str, data: bytes, lock: LockSpec, content_type: str) -> str:
        return anchors.put_once(self, relkey, data, lock, content_type)

    def document_versions(self, relkey: str) -> list[bytes]:
        return anchors.document_versions(self, relkey)

    def list_documents(self, relprefix: str) -> list[str]:
        return anchors.list_documents(self, relprefix)

    def sidecar_relkey(self, stored_key: str, recording_id: str) -> str:
        rel = stored_key[len(self.loc.prefix) + 1 :] if self.loc.prefix else stored_key
        return archive_keys.sidecar_key(rel)

    def apply_lock(self, ref: str, lock: LockSpec) -> None:
        bucket, key, version = self._parse(ref)
        c = self.client
        try:
            if lock.legal_hold:
                c.put_object_legal_hold(
                    Bucket=bucket, Key=key, VersionId=version, LegalHold={"Status": "ON"}
                )
            if lock.mode and lock.retain_until:
                cur = c.get_object_retention(Bucket=bucket, Key=key, VersionId=version)
                until = cur.get("Retention", {}).get("RetainUntilDate")
                if until is None or until < lock.retain_until:
                    c.put_object_retention(
                        Bucket=bucket,
                        Key=key,
                        VersionId=version,
                        Retention={"Mode": lock.mode, "RetainUntilDate": lock.retain_until},
                    )
        except Exception as exc:
            raise self.tr(exc, f"set Object Lock on {key}") from exc

    def housekeep_store(self) -> int:
        return abort_abandoned(self)


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
