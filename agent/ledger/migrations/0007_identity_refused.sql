-- Untrusted identifiers (issue 12): why a recorder's or a file's identifier was refused.
-- A recorder or recording with a refusal is quarantined (copied and hashed, never archived
-- or released) until an operator decides; NULL means nothing was refused.

ALTER TABLE devices ADD COLUMN identity_refused TEXT;
ALTER TABLE recordings ADD COLUMN identity_refused TEXT;
