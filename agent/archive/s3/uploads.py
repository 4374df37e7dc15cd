"""The `archive_uploads` and `archive_parts` tables: this station's multipart uploads.

The one writer of both tables. The resumable uploader (`agent.archive.s3.multipart`) records an
upload's UploadId, each finished part, a part that no longer checks out, and the upload's end;
the abandoned-upload sweep (`agent.archive.s3.abandon`) marks the uploads it aborts. Every
function runs in the caller's transaction.
"""

from __future__ import annotations

import sqlite3

from agent.archive.s3.partplan import Part
from agent.archive.store import ObjectSpec
from agent.core import clock


def record_started(
    conn: sqlite3.Connection,
    uid: str,
    spec: ObjectSpec,
    bucket: str,
    key: str,
    part_size: int,
    parts: int,
) -> None:
    """An upload of `spec` to `bucket`/`key` in `parts` parts was started (state `open`)."""
    at = clock.iso(clock.now())
    conn.execute(
        "INSERT INTO archive_uploads(upload_id, recording_id, bucket, key, sha256, size,"
        " part_size, parts, retain_mode, retain_until, legal_hold, state, started_at,"
        " updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,'open',?,?)",
        (
            uid,
            spec.recording_id,
            bucket,
            key,
            spec.sha256,
            spec.size,
            part_size,
            parts,
            spec.lock.mode,
            clock.iso(spec.lock.retain_until),
            int(spec.lock.legal_hold),
            at,
            at,
        ),
    )


def record_part(conn: sqlite3.Connection, uid: str, p: Part, etag: str) -> None:
    """Part `p` of upload `uid` is on the store with `etag`."""
    conn.execute(
        "INSERT OR REPLACE INTO archive_parts(upload_id, part_number, size, checksum_sha256,"
        " etag, done_at) VALUES(?,?,?,?,?,?)",
        (uid, p.number, p.size, p.checksum, etag, clock.iso(clock.now())),
    )


def forget_part(conn: sqlite3.Connection, uid: str, number: int) -> None:
    """A recorded part no longer checks out at the store: it is sent again."""
    conn.execute(
        "DELETE FROM archive_parts WHERE upload_id=? AND part_number=?",
        (uid, number),
    )


def set_state(conn: sqlite3.Connection, uid: str, state: str) -> None:
    """Upload `uid` ended (`completed`, `aborted`, ...)."""
    conn.execute(
        "UPDATE archive_uploads SET state=?, updated_at=? WHERE upload_id=?",
        (state, clock.iso(clock.now()), uid),
    )
