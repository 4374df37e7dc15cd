-- Signed MQTT commands (issue 14, item 1): nonces seen within the time window, and the
-- replies of signed commands that ran, by (console key, verb, request id).

-- A nonce is kept until the newest time its command could still be inside the window
-- (`expires`, Unix seconds); only commands whose signature verified are remembered, so an
-- unsigned flood writes nothing here. Kept across restarts: a replay after a restart is caught.
CREATE TABLE mqtt_nonces (
    key      TEXT NOT NULL,
    nonce    TEXT NOT NULL,
    expires  REAL NOT NULL,
    PRIMARY KEY (key, nonce)
);
CREATE INDEX mqtt_nonces_expires ON mqtt_nonces (expires);

-- Idempotency of signed commands: the same (key, verb, request id) with the same arguments
-- (args_sha256) is answered with the first reply; with other arguments it is refused.
CREATE TABLE mqtt_signed_commands (
    key          TEXT NOT NULL,
    verb         TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    args_sha256  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    reply        TEXT NOT NULL,
    PRIMARY KEY (key, verb, request_id)
);
CREATE INDEX mqtt_signed_commands_received ON mqtt_signed_commands (received_at);
