"""Resumable multipart upload: a SHA-256 checksum on every part, parts in parallel, and the
UploadId plus every finished part in the ledger, so a crash or an outage resumes the same
upload instead of starting again.

Resume = `list_parts`, then re-check each part the store lists against the ledger and against
the part's fresh digest (size, ETag, checksum when the store reports it); parts that check
out are kept (also ones that finished on the store but were not yet recorded when the agent
died), the rest are sent again. The final proof is the store's composite checksum, compared
with the one computed locally from the same parts before the recording may become `archived`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any

from agent.archive.s3 import uploads
from agent.archive.s3.client import error_code
from agent.archive.s3.partplan import Part, composite, lock_kwargs, pread_part
from agent.archive.store import LockSpec, ObjectSpec
from agent.core import clock, crashpoint, envelope, sealedio
from agent.core.errors import ChecksumRejectedError, SpoolIntegrityError, SpoolReadError
from agent.ledger.db import Ledger

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completed:
    version_id: str | None
    checksum: str
    lock: LockSpec
    upload_id: str | None = None


class MultipartUploader:
    """Uploads one object in parts; all ledger writes happen on the caller's thread."""

    def __init__(
        self,
        client: Any,
        ledger: Ledger,
        bucket: str,
        parallel: int,
        stop: Event,
        translate: Callable[[BaseException, str], Exception],
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.bucket = bucket
        self.parallel = parallel
        self.keys: envelope.Keyring | None = None  # opens encrypted spool copies
        self.create_extra: dict[str, str] = {}  # e.g. SSE (agent.archive.s3.sse)
        self.open_body: Callable[[], Any] | None = None  # other bytes than the plaintext
        self.stop = stop
        self.translate = translate

    # --- the whole upload --------------------------------------------------------------------

    def upload(
        self,
        src: Path,
        spec: ObjectSpec,
        key: str,
        part_size: int,
        parts: list[Part],
        metadata: dict[str, str],
    ) -> Completed:
        resumed = self._resume(spec, key, part_size, parts)
        if isinstance(resumed, Completed):
            return resumed
        done: dict[int, str] = {}
        if resumed is None:
            uid, lock = self._create(key, spec, part_size, parts, metadata), spec.lock
        else:
            uid, lock, done = resumed
        self._send_all(src, key, uid, [p for p in parts if p.number not in done], done)
        crashpoint.hit("upload.before_complete")
        resp = self._complete(key, uid, parts, done)
        crashpoint.hit("upload.after_complete")
        self._set_state(uid, "completed")
        return Completed(resp.get("VersionId"), composite(parts), lock, uid)

    def _resume(
        self, spec: ObjectSpec, key: str, part_size: int, parts: list[Part]
    ) -> Completed | tuple[str, LockSpec, dict[int, str]] | None:
        """The ledger's open upload of this recording: (UploadId, its lock, parts the store
        holds), the finished object if it completed before a crash, or None to start anew."""
        row = self.open_upload(spec.recording_id)
        if row is None:
            return None
        uid = str(row["upload_id"])
        if (row["key"], row["sha256"], row["part_size"], row["size"]) != (
            key, spec.sha256, part_size, spec.size
        ):  # fmt: skip
            logger.info(
                "recording %s: earlier upload %s no longer fits; aborting it",
                spec.recording_id,
                uid,
            )
            self.abort(row["key"], uid)
            return None
        lock = LockSpec(
            row["retain_mode"], clock.parse_iso(row["retain_until"]), bool(row["legal_hold"])
        )
        listed = self._list_parts(key, uid)
        if listed is None:
            finished = self._completed_earlier(key, spec, parts, lock, uid)
            if finished is None:
                self._set_state(uid, "aborted")
            return finished
        done = self._reconcile(uid, parts, listed)
        logger.info(
            "recording %s: resuming upload %s, %d of %d parts already stored",
            spec.recording_id,
            uid,
            len(done),
            len(parts),
        )
        return uid, lock, done

    def open_upload(self, rid: str) -> Any:
        return self.ledger.one(
            "SELECT * FROM archive_uploads WHERE recording_id=? AND state='open'"
            " ORDER BY started_at DESC LIMIT 1",
            (rid,),
        )

    # --- steps -------------------------------------------------------------------------------

    def _create(
        self, key: str, spec: ObjectSpec, part_size: int, parts: list[Part], meta: dict[str, str]
    ) -> str:
        try:
            resp = self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                ChecksumAlgorithm="SHA256",
                Metadata=meta,
                ContentType="application/octet-stream",
                **lock_kwargs(spec.lock),
                **self.create_extra,
            )
        except Exception as exc:
            raise self.translate(exc, f"start upload of {key}") from exc
        uid = str(resp["UploadId"])
        with self.ledger.tx() as conn:
            uploads.record_started(conn, uid, spec, self.bucket, key, part_size, len(parts))
        return uid

    def _list_parts(self, key: str, uid: str) -> dict[int, dict[str, Any]] | None:
        """Parts the store holds for `uid`, or None when the upload no longer exists."""
        listed: dict[int, dict[str, Any]] = {}
        marker = 0
        while True:
            try:
                resp = self.client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=uid, PartNumberMarker=marker
                )
            except Exception as exc:
                if error_code(exc) == "NoSuchUpload":
                    return None
                raise self.translate(exc, f"list parts of upload {uid} ({key})") from exc
            for p in resp.get("Parts", []):
                listed[int(p["PartNumber"])] = p
            if not resp.get("IsTruncated"):
                return listed
            marker = int(resp.get("NextPartNumberMarker") or max(listed))

    def _reconcile(
        self, uid: str, parts: list[Part], listed: dict[int, dict[str, Any]]
    ) -> dict[int, str]:
        recorded = {
            int(r["part_number"]): r
            for r in self.ledger.query("SELECT * FROM archive_parts WHERE upload_id=?", (uid,))
        }
        done: dict[int, str] = {}
        with self.ledger.tx() as conn:
            for p in parts:
                have, rec = listed.get(p.number), recorded.get(p.number)
                ok = (
                    have is not None
                    and int(have["Size"]) == p.size
                    and have.get("ChecksumSHA256") in (None, p.checksum)
                    and (
                        rec is None
                        or (rec["etag"] == have["ETag"] and rec["checksum_sha256"] == p.checksum)
                    )
                )
                if not ok:
                    if rec is not None:
                        logger.warning(
                            "upload %s part %d does not check out at the store; sending it again",
                            uid,
                            p.number,
                        )
                        uploads.forget_part(conn, uid, p.number)
                    continue
                assert have is not None
                if rec is None:  # finished on the store, but the agent died before recording it
                    self._record(conn, uid, p, str(have["ETag"]))
                done[p.number] = str(have["ETag"])
        return done

    def _send_all(
        self, src: Path, key: str, uid: str, todo: list[Part], done: dict[int, str]
    ) -> None:
        try:
            # The plaintext, through the envelope when the spool copy is encrypted.
            fd = self.open_body() if self.open_body else sealedio.PlainReader(src, self.keys)
        except OSError as exc:
            raise SpoolReadError(f"cannot open spool copy {src}: {exc.strerror}") from exc
        try:
            first_error = self._send_parallel(fd, src, key, uid, todo, done)
        finally:
            fd.close()
        if first_error is not None:
            raise first_error
        if any(p.number not in done for p in todo):
            raise InterruptedError("stopping: upload left resumable in the ledger")

    def _send_parallel(
        self,
        fd: Any,
        src: Path,
        key: str,
        uid: str,
        todo: list[Part],
        done: dict[int, str],
    ) -> BaseException | None:
        """Keep `parallel` parts in flight; stop feeding after the first error or on stop."""
        first_error: BaseException | None = None
        queue = iter(todo)
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="upload-part") as pool:
            running: dict[Future[str], Part] = {}

            def submit() -> None:
                p = None if first_error or self.stop.is_set() else next(queue, None)
                if p is not None:
                    running[pool.submit(self._send, fd, src, key, uid, p)] = p

            for _ in range(self.parallel):
                submit()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    error = self._part_done(fut, running.pop(fut), uid, done)
                    first_error = first_error or error
                    if error is None:
                        submit()
        return first_error

    def _part_done(
        self, fut: Future[str], p: Part, uid: str, done: dict[int, str]
    ) -> BaseException | None:
        """Record a finished part in the ledger (resumable from here), or return its error."""
        try:
            etag = fut.result()
        except BaseException as exc:  # noqa: BLE001 - re-raised by _send_all
            return exc
        with self.ledger.tx() as conn:
            self._record(conn, uid, p, etag)
        done[p.number] = etag
        crashpoint.hit("upload.after_part")
        return None

    def _send(self, fd: Any, src: Path, key: str, uid: str, p: Part) -> str:
        data = pread_part(fd, src, p)
        for attempt in (1, 2):
            try:
                resp = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=uid,
                    PartNumber=p.number,
                    Body=data,
                    ContentLength=p.size,
                    ChecksumSHA256=p.checksum,
                )
                return str(resp["ETag"])
            except Exception as exc:
                err = self.translate(exc, f"upload part {p.number} of {key}")
                if not isinstance(err, ChecksumRejectedError):
                    raise err from exc
                if hashlib.sha256(data).digest() != p.digest:
                    raise SpoolIntegrityError(
                        f"spool copy {src} changed while it was uploaded (part {p.number})"
                    ) from exc
                logger.warning(
                    "store rejected part %d of %s for its checksum (attempt %d)",
                    p.number,
                    key,
                    attempt,
                )
                if attempt == 2:
                    raise err from exc
        raise AssertionError("unreachable")

    def _complete(
        self, key: str, uid: str, parts: list[Part], done: dict[int, str]
    ) -> dict[str, Any]:
        body = {
            "Parts": [
                {"PartNumber": p.number, "ETag": done[p.number], "ChecksumSHA256": p.checksum}
                for p in parts
            ]
        }
        try:
            resp: dict[str, Any] = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=uid, MultipartUpload=body
            )
        except Exception as exc:
            if error_code(exc) in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                # The store does not accept what it holds: start this object afresh next time.
                self.abort(key, uid)
            raise self.translate(exc, f"complete upload {uid} of {key}") from exc
        return resp

    def _completed_earlier(
        self, key: str, spec: ObjectSpec, parts: list[Part], lock: LockSpec, uid: str
    ) -> Completed | None:
        """The upload is gone: did it complete before the agent died (crash before commit)?"""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self.translate(exc, f"look up {key}") from exc
        if (head.get("Metadata") or {}).get("sha256") != spec.sha256:
            return None
        if head.get("ChecksumSHA256") not in (None, composite(parts)):
            return None
        self._set_state(uid, "completed")
        logger.info(
            "recording %s: upload %s had completed before the restart", spec.recording_id, uid
        )
        return Completed(head.get("VersionId"), composite(parts), lock, uid)

    def abort(self, key: str, uid: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=uid)
        except Exception as exc:
            if error_code(exc) != "NoSuchUpload":
                raise self.translate(exc, f"abort upload {uid} of {key}") from exc
        self._set_state(uid, "aborted")

    # --- ledger ------------------------------------------------------------------------------

    @staticmethod
    def _record(conn: Any, uid: str, p: Part, etag: str) -> None:
        uploads.record_part(conn, uid, p, etag)

    def _set_state(self, uid: str, state: str) -> None:
        with self.ledger.tx() as conn:
            uploads.set_state(conn, uid, state)
