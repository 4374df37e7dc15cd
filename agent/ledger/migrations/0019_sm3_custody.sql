-- 国密 suite (issue 19): the custody chain under crypto.suite = "sm". Each event written while
-- the suite is "sm" carries an SM3 chain value next to its SHA-256 hash (hex; NULL before
-- the switch and under "intl"), and each checkpoint an SM2 signature by the station SM2 key
-- next to the Ed25519 one (agent/ledger/sm3chain.py). Adding columns leaves the append-only
-- triggers of 0011 as they are: rows are still never updated or deleted.
ALTER TABLE custody ADD COLUMN sm3 TEXT;
ALTER TABLE checkpoints ADD COLUMN sm2_signature TEXT;
ALTER TABLE checkpoints ADD COLUMN sm2_public_key TEXT;
