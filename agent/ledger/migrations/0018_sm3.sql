-- 国密 suite (issue 19): the SM3 digest of each recording, recorded next to SHA-256 in the
-- same pass as the copy when crypto.suite = "sm" (hex; NULL for recordings copied under "intl"
-- and for every recording before this version).
ALTER TABLE recordings ADD COLUMN sm3 TEXT;
