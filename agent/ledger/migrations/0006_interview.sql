-- Interview-room sessions: the session with its case metadata, its closed segments (each hashed
-- as it closes and handed to ingest as a recording), the gaps in its coverage, and marks.

CREATE TABLE interview_sessions (
    id              TEXT PRIMARY KEY,          -- UUIDv7
    room            TEXT NOT NULL,             -- place (采集地点) shown in the overlay
    state           TEXT NOT NULL CHECK (state IN ('requested','recording','stopping',
                                                    'closed','failed')),
    case_number     TEXT,                      -- 案件编号
    interviewers    TEXT NOT NULL DEFAULT '[]',-- JSON list of officer ids (采集人)
    subject         TEXT,                      -- person interviewed
    proves          TEXT,                      -- 证明对象
    notes           TEXT,
    requested_by    TEXT NOT NULL,             -- cli, panel, mqtt
    requested_at    TEXT NOT NULL,
    started_at      TEXT,                      -- first real frame of the session
    stop_requested_by TEXT,
    ended_at        TEXT,                      -- when stop was asked for
    closed_at       TEXT,                      -- all segments closed and handed to ingest
    coverage        REAL,                      -- 0..1, set when closed
    fallback        INTEGER NOT NULL DEFAULT 0,-- recorded by the OpenCV video-only fallback
    reason          TEXT,
    updated_at      TEXT NOT NULL
);
CREATE INDEX interview_sessions_state ON interview_sessions (state);

CREATE TABLE interview_segments (
    id           INTEGER PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES interview_sessions(id),
    camera       TEXT NOT NULL,
    seq          INTEGER NOT NULL,               -- 1.. per session and camera
    work_path    TEXT NOT NULL UNIQUE,           -- where the capture wrote it
    volume       TEXT NOT NULL,                  -- the camera's volume (ingest source)
    path         TEXT NOT NULL,                  -- relative to volume
    start        TEXT NOT NULL,                  -- wall clock of its first frame
    end          TEXT NOT NULL,
    duration_s   REAL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    has_video    INTEGER,
    has_audio    INTEGER,
    playable     INTEGER,
    salvaged     INTEGER NOT NULL DEFAULT 0,     -- left by a crash: kept bit-exact, flagged
    reason       TEXT,
    recording_id TEXT,                           -- the ingest recording, once registered
    closed_at    TEXT NOT NULL,
    UNIQUE (session_id, camera, seq)
);
CREATE INDEX interview_segments_session ON interview_segments (session_id, camera, seq);

CREATE TABLE interview_gaps (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES interview_sessions(id),
    camera      TEXT,
    kind        TEXT NOT NULL,   -- no_frames, unplugged, no_audio, no_sound, frozen, black,
                                 -- write_failed, agent_down, capture_failed
    start       TEXT NOT NULL,
    end         TEXT,            -- NULL while the gap is open
    detail      TEXT
);
CREATE INDEX interview_gaps_session ON interview_gaps (session_id);

CREATE TABLE interview_marks (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES interview_sessions(id),
    at          TEXT NOT NULL,
    source      TEXT NOT NULL,
    note        TEXT
);
