-- Archive: resumable multipart uploads and their finished parts, what the store verifiably
-- holds per recording (version, checksum, retention, sidecar and audit state), per-recording
-- archive retry state, and spool housekeeping.

ALTER TABLE recordings ADD COLUMN archive_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recordings ADD COLUMN archive_retry_at TEXT;       -- not before this (backoff)
ALTER TABLE recordings ADD COLUMN archive_error TEXT;          -- last archive problem, NULL when fine
ALTER TABLE recordings ADD COLUMN spool_removed_at TEXT;       -- spool copy removed by housekeeping

CREATE TABLE archive_uploads (
    upload_id     TEXT PRIMARY KEY,
    recording_id  TEXT NOT NULL REFERENCES recordings(id),
    bucket        TEXT NOT NULL,
    key           TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    part_size     INTEGER NOT NULL,
    parts         INTEGER NOT NULL,
    retain_mode   TEXT,                 -- Object Lock mode set at CreateMultipartUpload
    retain_until  TEXT,
    legal_hold    INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL CHECK (state IN ('open', 'completed', 'aborted')),
    started_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX archive_uploads_recording ON archive_uploads (recording_id, state);

CREATE TABLE archive_parts (
    upload_id       TEXT NOT NULL REFERENCES archive_uploads(upload_id),
    part_number     INTEGER NOT NULL,
    size            INTEGER NOT NULL,
    checksum_sha256 TEXT NOT NULL,      -- base64, as S3 reports it
    etag            TEXT NOT NULL,
    done_at         TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

CREATE TABLE archive_objects (
    recording_id    TEXT PRIMARY KEY REFERENCES recordings(id),
    store           TEXT NOT NULL,      -- s3, file
    bucket          TEXT,
    key             TEXT NOT NULL,
    version_id      TEXT,
    size            INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    checksum        TEXT,               -- the store's checksum as verified (composite: "...-N")
    retain_mode     TEXT,
    retain_until    TEXT,
    legal_hold      INTEGER NOT NULL DEFAULT 0,
    verified_at     TEXT NOT NULL,
    sidecar_version INTEGER,            -- metadata version in the last sidecar shipped
    sidecar_at      TEXT,
    case_number     TEXT,               -- case of the last case index entry written
    audited_at      TEXT,
    audit_ok        INTEGER
);
