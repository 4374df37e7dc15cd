-- Supervised retrieval (调阅, issue 16 item 3): an export is a request that a supervisor other
-- than the requester approves or refuses, executed once by the requester within a window, and
-- marked returned by a custodian. Every state change is one transaction with its custody event
-- (export.requested / approved / refused / started / returned), written by
-- agent/access/retrieval.py. Times are ISO-8601 with offset.
CREATE TABLE export_requests (
    id              TEXT PRIMARY KEY,            -- UUID, printed as the request id
    requester       TEXT NOT NULL,               -- officer id of the authenticated custodian
    recordings      TEXT NOT NULL,               -- JSON list of recording ids
    reason          TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                        ('requested', 'approved', 'refused', 'executed', 'returned')),
    confidential    INTEGER NOT NULL DEFAULT 0,  -- any recording marked confidential at request
    requested_at    TEXT NOT NULL,
    decided_by      TEXT,                        -- officer id of the approving/refusing supervisor
    decided_at      TEXT,
    decision_reason TEXT,
    executed_at     TEXT,
    export_id       TEXT,                        -- ties to export.started / recording.exported
    export_to       TEXT,
    returned_by     TEXT,
    returned_at     TEXT,
    return_note     TEXT
);
CREATE INDEX export_requests_state ON export_requests (state, requested_at);
