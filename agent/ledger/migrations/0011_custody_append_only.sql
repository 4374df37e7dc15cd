-- custody and checkpoints are append-only in the database, as metadata_versions is (0003).
-- `verify` compares these texts with agent/ledger/appendonly.py and fails when one is
-- missing or altered (an attacker with the file drops them first).
CREATE TRIGGER custody_no_update BEFORE UPDATE ON custody
BEGIN
    SELECT RAISE(ABORT, 'custody is append-only: record a new event instead');
END;

CREATE TRIGGER custody_no_delete BEFORE DELETE ON custody
BEGIN
    SELECT RAISE(ABORT, 'custody is append-only: events are never deleted');
END;

CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only: sign a new checkpoint instead');
END;

CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only: checkpoints are never deleted');
END;
