-- Encryption at rest (issue 19): which station key-encryption key wraps the data key of each
-- spool copy (hex key id; NULL = a plaintext copy, as every copy before this version is).
-- `keys encryption rotate` and `recover` move it; the background encryption of old plaintext
-- copies will list the NULL rows.
ALTER TABLE recordings ADD COLUMN spool_key_id TEXT;
CREATE INDEX recordings_spool_key ON recordings(spool_key_id) WHERE spool_path IS NOT NULL;
