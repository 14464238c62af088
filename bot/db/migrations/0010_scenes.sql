-- Scenes (issue #16): a scene holds shots in order; a shot has takes (its first take and re-rolls, all jobs with the
-- same root); one take per shot is kept. A shot's row is written in the same transaction as its first take's job
-- (or reserved, with take_id NULL, when a storyboard is confirmed and its parts are not cut yet).
CREATE TABLE scenes (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL,   -- a channel or a thread: one open scene in each
    name        TEXT NOT NULL,
    started_by  INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    ended_by    INTEGER,
    ended_at    REAL
);
CREATE UNIQUE INDEX scenes_one_open ON scenes (channel_id) WHERE ended_at IS NULL;
CREATE INDEX scenes_channel ON scenes (channel_id, id);

CREATE TABLE scene_shots (
    id            INTEGER PRIMARY KEY,
    scene_id      INTEGER NOT NULL REFERENCES scenes(id),
    position      INTEGER NOT NULL,
    take_id       INTEGER UNIQUE REFERENCES jobs(id),  -- the shot's first take (the root of its takes)
    storyboard_id INTEGER REFERENCES jobs(id),         -- made in one call: the storyboard it is cut from
    prompt        TEXT NOT NULL,
    duration_s    INTEGER NOT NULL,
    kept_take_id  INTEGER REFERENCES jobs(id),
    kept_by       INTEGER,
    kept_at       REAL,
    created_at    REAL NOT NULL,
    UNIQUE (scene_id, position)
);

-- A plan of several shots, quoted before anything is held; Confirm queues it once (confirmed_at is set in the
-- same transaction as its jobs).
CREATE TABLE scene_plans (
    id            INTEGER PRIMARY KEY,
    scene_id      INTEGER NOT NULL REFERENCES scenes(id),
    guild_id      INTEGER NOT NULL,
    channel_id    INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    shots         TEXT NOT NULL,     -- JSON [{"prompt", "duration_s"}]
    one_call      INTEGER NOT NULL DEFAULT 0,
    audio         INTEGER NOT NULL DEFAULT 0,
    price_micros  INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    confirmed_at  REAL
);
