-- `report` over a period (issue 13): counts aggregated in SQL from one covering index.
--
-- Stored times are ISO-8601 text with mixed UTC offsets (UTC from the agent's clock, station
-- time from file names), so string order is not time order. Each recording gets its times as
-- integer microseconds since the epoch (exact, whatever the offset), and whether its current
-- metadata lacks a case number; triggers keep them right for every writer, old code paths
-- included. A month or a year of `report` is then one range of `recordings_report`, never the
-- table. Times are as `datetime.isoformat` writes them: YYYY-MM-DDTHH:MM:SS, then a fraction or
-- nothing, then +HH:MM. `unixepoch` rounds fractions to milliseconds, so the whole seconds go
-- in without the fraction and the microseconds are added from the text.

ALTER TABLE recordings ADD COLUMN made_us INTEGER;  -- end, else start: the report's period
ALTER TABLE recordings ADD COLUMN age_us INTEGER;   -- end, else discovered: untagged since
ALTER TABLE recordings ADD COLUMN due_us INTEGER;   -- deadline
ALTER TABLE recordings ADD COLUMN met_us INTEGER;   -- deadline_met_at
ALTER TABLE recordings ADD COLUMN untagged INTEGER NOT NULL DEFAULT 1;  -- no case number now

CREATE TRIGGER recordings_instants_insert AFTER INSERT ON recordings
BEGIN
    UPDATE recordings SET
        made_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
                   + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
                   FROM (SELECT COALESCE(NULLIF(COALESCE(NEW.end_corrected, NEW.end), ''),
                                         NULLIF(COALESCE(NEW.start_corrected, NEW.start), '')) AS x)),
        age_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
                  + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
                  FROM (SELECT COALESCE(NULLIF(COALESCE(NEW.end_corrected, NEW.end), ''),
                                        NEW.discovered_at) AS x)),
        due_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
                  + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
                  FROM (SELECT NULLIF(NEW.deadline, '') AS x)),
        met_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
                  + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
                  FROM (SELECT NULLIF(NEW.deadline_met_at, '') AS x))
    WHERE rowid = NEW.rowid;
END;

-- The inner UPDATE names none of the columns below, so it fires neither trigger again.
CREATE TRIGGER recordings_instants_update
AFTER UPDATE OF end, end_corrected, start, start_corrected, discovered_at, deadline,
    deadline_met_at ON recordings
WHEN OLD.end IS NOT NEW.end OR OLD.end_corrected IS NOT NEW.end_corrected
    OR OLD.start IS NOT NEW.start OR OLD.start_corrected IS NOT NEW.start_corrected
    OR OLD.discovered_at IS NOT NEW.discovered_at OR OLD.deadline IS NOT NEW.deadline
    OR OLD.deadline_met_at IS NOT NEW.deadline_met_at
BEGIN
    UPDATE recordings SET
        made_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
                   + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
                   FROM (SELECT COALESCE(NULLIF(COALESCE(NEW.end_corrected, NEW.end), ''),
                                         NULLIF(COALESCE(NEW.start_corrected, NEW.start), '')) AS x)),
        age_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
                  + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
                  FROM (SELECT COALESCE(NULLIF(COALESCE(NEW.end_corrected, NEW.end), ''),
                                        NEW.discovered_at) AS x)),
        due_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
                  + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
                  FROM (SELECT NULLIF(NEW.deadline, '') AS x)),
        met_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
                  + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
                  FROM (SELECT NULLIF(NEW.deadline_met_at, '') AS x))
    WHERE rowid = NEW.rowid;
END;

-- A new metadata version is the current one (versions are append-only; `verify` checks that
-- the row points at the latest): its case number decides.
CREATE TRIGGER recordings_untagged_version AFTER INSERT ON metadata_versions
BEGIN
    UPDATE recordings SET untagged = (json_extract(NEW.fields, '$.case_number') IS NULL)
        WHERE id = NEW.recording_id;
END;

-- Existing rows: the same computation, once per row.
UPDATE recordings SET
    made_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
               + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
               FROM (SELECT COALESCE(NULLIF(COALESCE(end_corrected, end), ''),
                                     NULLIF(COALESCE(start_corrected, start), '')) AS x)),
    age_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
              + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
              FROM (SELECT COALESCE(NULLIF(COALESCE(end_corrected, end), ''), discovered_at) AS x)),
    due_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
              + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
              FROM (SELECT NULLIF(deadline, '') AS x)),
    met_us = (SELECT unixepoch(substr(x, 1, 19) || substr(x, -6)) * 1000000
              + iif(substr(x, 20, 1) = '.', CAST(substr(substr(x, 21, length(x) - 26) || '000000', 1, 6) AS INTEGER), 0)
              FROM (SELECT NULLIF(deadline_met_at, '') AS x));
UPDATE recordings SET untagged = 0
    WHERE metadata_version > 0
      AND (SELECT json_extract(m.fields, '$.case_number') FROM metadata_versions m
           WHERE m.recording_id = recordings.id AND m.version = recordings.metadata_version)
          IS NOT NULL;

CREATE INDEX recordings_report ON recordings (made_us, unit_id, due_us, met_us, age_us, untagged, id);
