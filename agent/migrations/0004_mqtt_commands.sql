-- MQTT commands already answered, by the request id the sender gave: a QoS 1 command that
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
