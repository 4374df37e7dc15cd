-- One owner for a recorder's unit (issue 18): the inventory when it lists the recorder,
-- otherwise the recorder's own claim. `unit_id` holds that effective unit; the recorder's
-- claim moves to `reported_unit_id` so a claim that differs from the inventory is flagged
-- instead of being counted as a second unit.
ALTER TABLE devices ADD COLUMN reported_unit_id TEXT;

-- Rows the inventory does not list: their unit came from the recorder.
UPDATE devices SET reported_unit_id = unit_id WHERE inventory_unit_id IS NULL;

-- Rows the inventory lists under another unit: the stored unit was the recorder's claim
-- (the old import kept it); the inventory's unit is the one counted from now on.
UPDATE devices SET reported_unit_id = unit_id, unit_id = inventory_unit_id
 WHERE inventory_unit_id IS NOT NULL AND unit_id IS NOT NULL AND unit_id <> inventory_unit_id;
UPDATE devices SET unit_id = inventory_unit_id
 WHERE inventory_unit_id IS NOT NULL AND unit_id IS NULL;
