-- One table for every kind of job (a take at fal today; anchor sheets, voices, scores and exports next).
-- args/outputs are the kind's own JSON; the columns are what the engine itself reads.
CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY,
    kind                TEXT NOT NULL,
    parent_id           INTEGER REFERENCES jobs(id),  -- a re-roll's original, a score's take, an export's scene
    seq                 INTEGER NOT NULL DEFAULT 1,   -- 1 for an original, then 2, 3 ... among its children
    ledger_key          TEXT NOT NULL UNIQUE,         -- the hold's key in the ledger (`shot:{id}` for takes)
    guild_id            INTEGER NOT NULL,
    channel_id          INTEGER NOT NULL,
    user_id             INTEGER NOT NULL,
    args                TEXT NOT NULL DEFAULT '{}',
    outputs             TEXT NOT NULL DEFAULT '{}',
    state               TEXT NOT NULL CHECK (state IN ('waiting', 'submitting', 'submitted', 'running',
                                                        'completed', 'downloaded', 'posting', 'posted',
                                                        'failed', 'cancelled')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     REAL NOT NULL DEFAULT 0,
    request_id          TEXT,
    endpoint            TEXT,
    backend             TEXT NOT NULL,
    price_micros        INTEGER NOT NULL DEFAULT 0,
    queue_position      INTEGER,
    progress_message_id INTEGER,
    reply_to_message_id INTEGER,
    result_message_id   INTEGER,
    error               TEXT,
    created_at          REAL NOT NULL,
    submitted_at        REAL,
    started_at          REAL,
    completed_at        REAL,
    finished_at         REAL,
    updated_at          REAL NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, next_attempt_at);
CREATE UNIQUE INDEX jobs_result_message ON jobs (result_message_id) WHERE result_message_id IS NOT NULL;
CREATE INDEX jobs_parent ON jobs (parent_id);
