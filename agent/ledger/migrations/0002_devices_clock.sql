-- Recorder drivers: clock correction of recording times (originals kept), device health.

-- Times corrected for the recorder's clock offset measured at dock; `start`/`end` keep the
-- recorder's own (original) times, never overwritten.
ALTER TABLE recordings ADD COLUMN start_corrected TEXT;
ALTER TABLE recordings ADD COLUMN end_corrected TEXT;
ALTER TABLE recordings ADD COLUMN clock_offset_s REAL;

-- Which driver saw the recorder last, and the health it reported.
ALTER TABLE devices ADD COLUMN driver TEXT;
ALTER TABLE devices ADD COLUMN firmware TEXT;
ALTER TABLE devices ADD COLUMN clock_checked_at TEXT;   -- when clock_offset_s was measured
ALTER TABLE devices ADD COLUMN clock_set_at TEXT;       -- last time the agent set its clock
ALTER TABLE devices ADD COLUMN login_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN last_error TEXT;
ALTER TABLE devices ADD COLUMN last_error_at TEXT;
ALTER TABLE devices ADD COLUMN last_seen TEXT;          -- last sighting by any driver or volume
ALTER TABLE devices ADD COLUMN inventory_unit_id TEXT;  -- unit and officer the inventory assigns
ALTER TABLE devices ADD COLUMN inventory_officer_id TEXT;

-- Operator decisions on quarantined recordings (who, when, why); the custody log has the rest.
ALTER TABLE recordings ADD COLUMN quarantine_decided_by TEXT;
ALTER TABLE recordings ADD COLUMN quarantine_decided_at TEXT;
