-- Initial ledger schema: devices, recordings, volume issues, custody log, checkpoints, outbox.

CREATE TABLE devices (
    id              INTEGER PRIMARY KEY,
    vendor          TEXT NOT NULL,
    serial          TEXT NOT NULL,
    serial_source   TEXT NOT NULL,
    model           TEXT,
    officer_id      TEXT,
    officer_name    TEXT,
    unit_id         TEXT,
    unit_name       TEXT,
    inventory_status TEXT,               -- in_service, repair, retired, lost; NULL = not in inventory
    registered      INTEGER NOT NULL DEFAULT 0,
    battery_pct     INTEGER,
    charging        INTEGER,
    clock_offset_s  REAL,
    port            TEXT,
    docked          INTEGER NOT NULL DEFAULT 0,
    volume          TEXT,
    first_seen      TEXT NOT NULL,
    last_docked     TEXT,
    UNIQUE (vendor, serial)
);

CREATE TABLE recordings (
    id              TEXT PRIMARY KEY,            -- UUIDv7
    device_id       INTEGER NOT NULL REFERENCES devices(id),
    source_path     TEXT NOT NULL,               -- relative to the volume, display form
    source_path_raw BLOB NOT NULL,               -- exact bytes of the relative path
    size            INTEGER NOT NULL,
    mtime_ns        INTEGER NOT NULL,
    officer_id      TEXT,
    unit_id         TEXT,
    start           TEXT,
    end             TEXT,
    start_source    TEXT,
    end_source      TEXT,
    duration_s      REAL,
    playable        INTEGER,
    playable_reason TEXT,
    state           TEXT NOT NULL CHECK (state IN ('discovered','copying','spooled','archived',
                                                    'released','failed','quarantined')),
    quarantine_decision TEXT,                  -- NULL, accepted, rejected
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    hash_alg        TEXT NOT NULL DEFAULT 'sha256',
    sha256          TEXT,
    source_size_at_hash  INTEGER,
    source_mtime_ns_at_hash INTEGER,
    spool_path      TEXT,
    spooled_at      TEXT,
    verified_at     TEXT,
    archive_ref     TEXT,
    archive_verified_at TEXT,
    archived_at     TEXT,
    released_at     TEXT,
    deadline        TEXT,
    deadline_met_at TEXT,
    priority        INTEGER NOT NULL DEFAULT 0,
    stable_since    TEXT NOT NULL,             -- size+mtime unchanged since; growing files wait
    discovered_at   TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX recordings_identity ON recordings (device_id, source_path_raw, size, mtime_ns);
CREATE INDEX recordings_state ON recordings (state, deadline);
CREATE INDEX recordings_sha ON recordings (sha256);

CREATE TABLE volume_issues (
    id          INTEGER PRIMARY KEY,
    volume      TEXT NOT NULL,
    serial      TEXT,
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- ignored, refused, error, waiting
    reason      TEXT NOT NULL,
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    UNIQUE (volume, path, kind)
);

CREATE TABLE custody (
    seq          INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    type         TEXT NOT NULL,
    recording_id TEXT,
    actor        TEXT NOT NULL,
    payload      TEXT NOT NULL,         -- canonical JSON
    alg          TEXT NOT NULL DEFAULT 'sha256',
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX custody_recording ON custody (recording_id);

CREATE TABLE checkpoints (
    seq          INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    head_seq     INTEGER NOT NULL,
    head_hash    TEXT NOT NULL,
    statement    TEXT NOT NULL,         -- canonical JSON that was signed
    signature    TEXT NOT NULL,         -- hex ed25519
    key_fingerprint TEXT NOT NULL
);

CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    at         TEXT NOT NULL,
    payload    TEXT NOT NULL
);

CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
