-- Dock console PINs (docs/console.md): one argon2id hash per officer id (the hash string
-- carries its own random salt and parameters), set by an admin through the gate, and the
-- wrong-PIN back-off. Every change is a custody event of agent/access/pins.py.
CREATE TABLE console_pins (
    officer_id TEXT PRIMARY KEY,
    pin_hash TEXT,
    set_at TEXT,
    set_by TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    last_failure_at TEXT,
    retry_after TEXT
);
