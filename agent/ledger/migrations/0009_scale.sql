-- Scale (issue 13): every command and periodic loop costs O(open work), not O(history).
--
-- Counters kept by triggers (so a ledger written by any process, old or new code path, stays
-- right) and partial/expression indexes whose predicates the queries repeat literally. This
-- migration builds them once from the existing rows, so a ledger made by an older release
-- upgrades with its counters right.

-- Recordings per recorder and state, with their bytes: `status`, MQTT state and the
-- recorder payloads read this small table instead of grouping every recording.
CREATE TABLE recording_counts (
    device_id INTEGER NOT NULL,
    state     TEXT NOT NULL,
    n         INTEGER NOT NULL DEFAULT 0,
    bytes     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, state)
) WITHOUT ROWID;

INSERT INTO recording_counts(device_id, state, n, bytes)
    SELECT device_id, state, COUNT(*), COALESCE(SUM(size), 0) FROM recordings
    GROUP BY device_id, state;

CREATE TRIGGER recording_counts_insert AFTER INSERT ON recordings
BEGIN
    INSERT INTO recording_counts(device_id, state, n, bytes)
        VALUES (NEW.device_id, NEW.state, 1, NEW.size)
        ON CONFLICT(device_id, state) DO UPDATE SET n = n + 1, bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER recording_counts_update AFTER UPDATE OF state, size, device_id ON recordings
WHEN OLD.state IS NOT NEW.state OR OLD.size IS NOT NEW.size OR OLD.device_id IS NOT NEW.device_id
BEGIN
    UPDATE recording_counts SET n = n - 1, bytes = bytes - OLD.size
        WHERE device_id = OLD.device_id AND state = OLD.state;
    INSERT INTO recording_counts(device_id, state, n, bytes)
        VALUES (NEW.device_id, NEW.state, 1, NEW.size)
        ON CONFLICT(device_id, state) DO UPDATE SET n = n + 1, bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER recording_counts_delete AFTER DELETE ON recordings
BEGIN
    UPDATE recording_counts SET n = n - 1, bytes = bytes - OLD.size
        WHERE device_id = OLD.device_id AND state = OLD.state;
END;

-- Named counters: `outbox` (events not yet delivered) and `untagged` (recordings whose
-- current metadata has no case number).
CREATE TABLE ledger_counters (
    name TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO ledger_counters(name, n) SELECT 'outbox', COUNT(*) FROM outbox;
INSERT INTO ledger_counters(name, n)
    SELECT 'untagged', COUNT(*) FROM recordings r LEFT JOIN metadata_versions m
        ON m.recording_id = r.id AND m.version = r.metadata_version
    WHERE json_extract(m.fields, '$.case_number') IS NULL;

CREATE TRIGGER outbox_count_insert AFTER INSERT ON outbox
BEGIN
    UPDATE ledger_counters SET n = n + 1 WHERE name = 'outbox';
END;

CREATE TRIGGER outbox_count_delete AFTER DELETE ON outbox
BEGIN
    UPDATE ledger_counters SET n = n - 1 WHERE name = 'outbox';
END;

-- A new recording has no metadata yet (version 0): untagged.
CREATE TRIGGER untagged_count_insert AFTER INSERT ON recordings
BEGIN
    UPDATE ledger_counters SET n = n + 1 WHERE name = 'untagged';
END;

-- A new metadata version moves the recording in or out of "untagged" by its case number
-- against the previous version's (version 0 = none = untagged).
CREATE TRIGGER untagged_count_version AFTER INSERT ON metadata_versions
BEGIN
    UPDATE ledger_counters SET n = n
        + (json_extract(NEW.fields, '$.case_number') IS NULL)
        - (COALESCE((SELECT json_extract(p.fields, '$.case_number') IS NULL
                     FROM metadata_versions p
                     WHERE p.recording_id = NEW.recording_id AND p.version = NEW.version - 1), 1))
        WHERE name = 'untagged';
END;

CREATE TRIGGER untagged_count_delete AFTER DELETE ON recordings
BEGIN
    UPDATE ledger_counters SET n = n
        - COALESCE((SELECT json_extract(m.fields, '$.case_number') IS NULL
                    FROM metadata_versions m
                    WHERE m.recording_id = OLD.id AND m.version = OLD.metadata_version), 1)
        WHERE name = 'untagged';
END;

-- Deadlines not met yet (compliance clock, MQTT state): open work only.
CREATE INDEX recordings_unmet ON recordings (deadline)
    WHERE deadline_met_at IS NULL AND deadline IS NOT NULL;

-- `status`: the most recent recordings, overall, per state and per recorder.
CREATE INDEX recordings_recent ON recordings (COALESCE(start, discovered_at), id);
CREATE INDEX recordings_state_recent ON recordings (state, COALESCE(start, discovered_at), id);
CREATE INDEX recordings_device_recent
    ON recordings (device_id, COALESCE(start, discovered_at), id);

-- `report` over a period and the untagged-age check: when a recording was made.
CREATE INDEX recordings_made
    ON recordings (COALESCE(end_corrected, end, start_corrected, start, discovered_at));

-- Housekeeping: spool copies still on disk (spooled, or archived and not yet removed).
CREATE INDEX recordings_spool_held ON recordings (archived_at, id)
    WHERE spool_removed_at IS NULL AND spool_path IS NOT NULL;

-- Housekeeping's crash recovery: removals committed since the last finished pass.
CREATE INDEX recordings_spool_removed ON recordings (spool_removed_at)
    WHERE spool_removed_at IS NOT NULL AND spool_path IS NOT NULL;
