-- The record's context and the case file (issue 16, item 4).

-- The salt of a version's party (执法对象) digest: the custody log, whose segments leave the
-- station, carries sha256(salt || party); the party and its salt stay in this table.
ALTER TABLE metadata_versions ADD COLUMN party_salt TEXT;

-- A case record keyed by case number: its conclusion date (执行终结之日), one per case; a
-- change is a new version with a reason, never an edit (custody event `case.concluded`).
CREATE TABLE case_versions (
    case_number  TEXT NOT NULL,
    version      INTEGER NOT NULL,          -- 1, 2, ... per case
    concluded_on TEXT NOT NULL,             -- YYYY-MM-DD, a date in station.timezone
    reason       TEXT NOT NULL,
    actor        TEXT NOT NULL,             -- the authenticated operator's officer id
    via          TEXT NOT NULL,             -- cli, console, mqtt
    at           TEXT NOT NULL,
    PRIMARY KEY (case_number, version)
) WITHOUT ROWID;

CREATE TRIGGER case_versions_no_update BEFORE UPDATE ON case_versions
BEGIN
    SELECT RAISE(ABORT, 'case_versions is append-only: add a new version instead');
END;

CREATE TRIGGER case_versions_no_delete BEFORE DELETE ON case_versions
BEGIN
    SELECT RAISE(ABORT, 'case_versions is append-only: versions are never deleted');
END;

-- A case's recordings by its number (agent.compliance.casefile repeats this expression
-- literally), so the case-file check costs O(cases' recordings), not O(history).
CREATE INDEX metadata_versions_case
    ON metadata_versions (json_extract(fields, '$.case_number'));

-- Recordings not archived yet (open work only): the MQTT compliance payload finds the case
-- files still open from here, in O(open work), whatever the number of concluded cases.
CREATE INDEX recordings_not_archived ON recordings (archived_at) WHERE archived_at IS NULL;
