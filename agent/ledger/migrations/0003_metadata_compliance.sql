-- Case metadata versions (append-only), applied tag sidecars, once-only compliance alerts.

CREATE TABLE metadata_versions (
    recording_id TEXT NOT NULL REFERENCES recordings(id),
    version      INTEGER NOT NULL,          -- 1, 2, ... per recording
    fields       TEXT NOT NULL,             -- canonical JSON: the whole document of this version
    actor        TEXT NOT NULL,             -- operator id, rule:<name>, sidecar actor, ...
    reason       TEXT,                      -- why (required when a set value changes)
    origin       TEXT NOT NULL,             -- cli, mqtt, sidecar, rule
    at           TEXT NOT NULL,
    PRIMARY KEY (recording_id, version)
);

-- Nothing is overwritten: a correction is a new version, never an edit of an old one.
CREATE TRIGGER metadata_versions_no_update BEFORE UPDATE ON metadata_versions
BEGIN
    SELECT RAISE(ABORT, 'metadata_versions is append-only: add a new version instead');
END;

CREATE TRIGGER metadata_versions_no_delete BEFORE DELETE ON metadata_versions
BEGIN
    SELECT RAISE(ABORT, 'metadata_versions is append-only: versions are never deleted');
END;

-- The current version of each recording (0 = never tagged), kept in the same transaction.
ALTER TABLE recordings ADD COLUMN metadata_version INTEGER NOT NULL DEFAULT 0;

-- When a recorder left the dock: "not docked for N working days" counts from here.
ALTER TABLE devices ADD COLUMN last_undocked TEXT;

-- A sidecar entry is applied once per recording and content digest, so a rescan does not
-- undo an operator's later correction by re-applying the recorder's sidecar.
CREATE TABLE sidecar_applied (
    recording_id TEXT NOT NULL REFERENCES recordings(id),
    digest       TEXT NOT NULL,
    source       TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (recording_id, digest)
);

-- Each deadline.at_risk / deadline.missed / recorder.not_docked event is emitted once per
-- subject and key (the deadline, or the time the recorder was last seen).
CREATE TABLE compliance_alerts (
    type    TEXT NOT NULL,
    subject TEXT NOT NULL,
    key     TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (type, subject, key)
);
