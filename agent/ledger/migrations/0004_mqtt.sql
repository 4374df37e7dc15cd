-- MQTT: command replies by request id, and an outbox whose seq is never reused.

-- MQTT commands already executed, by the request id the sender gave: a QoS 1 command that
-- the broker delivers twice is executed once and gets the same reply again.

CREATE TABLE mqtt_commands (
    request_id   TEXT PRIMARY KEY,
    verb         TEXT NOT NULL,
    client       TEXT,
    received_at  TEXT NOT NULL,
    ok           INTEGER NOT NULL,
    reply        TEXT NOT NULL            -- the JSON reply that was sent
);
CREATE INDEX mqtt_commands_received ON mqtt_commands (received_at);

-- Outbox sequence numbers are never handed out twice (AUTOINCREMENT): with a plain rowid,
-- deleting the newest rows after their PUBACK let the next event reuse those numbers, which
-- makes the drainer's bookkeeping and any log of seqs ambiguous.
CREATE TABLE outbox_v2 (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    at         TEXT NOT NULL,
    payload    TEXT NOT NULL
);
INSERT INTO outbox_v2(seq, id, type, at, payload) SELECT seq, id, type, at, payload FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
