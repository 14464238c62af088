-- Consistency (issue #12): the anchor's face, every take's face score, and the per-channel auto re-roll default.

-- The face of an anchor version (angle_id NULL) or, later, of one of its angles. `embedding` is 512 bytes
-- (128 little-endian float32), NULL when no usable face was found; `checks` is the face checklist as JSON.
CREATE TABLE anchor_faces (
    id          INTEGER PRIMARY KEY,
    version_id  INTEGER NOT NULL REFERENCES anchor_versions(id),
    angle_id    INTEGER,
    face_count  INTEGER NOT NULL,
    embedding   BLOB,
    checks      TEXT NOT NULL DEFAULT '[]',
    created_at  REAL NOT NULL
);
CREATE UNIQUE INDEX anchor_faces_one ON anchor_faces (version_id, COALESCE(angle_id, 0));

-- One score per take (written by its face_score job).
CREATE TABLE take_scores (
    take_id           INTEGER PRIMARY KEY REFERENCES jobs(id),
    anchor_version_id INTEGER NOT NULL,
    verdict           TEXT NOT NULL CHECK (verdict IN ('match', 'drift', 'no_face')),
    score             INTEGER,
    median_distance   REAL,
    frames_sampled    INTEGER NOT NULL,
    frames_with_face  INTEGER NOT NULL,
    frames_matching   INTEGER NOT NULL,
    threshold         REAL NOT NULL,
    scored_at         REAL NOT NULL
);
CREATE INDEX take_scores_version ON take_scores (anchor_version_id);

CREATE TABLE channel_consistency (
    channel_id  INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    auto_reroll INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
);

-- At most one score job per take, and at most one automatic re-roll per take, whatever crashes in between.
CREATE UNIQUE INDEX jobs_one_face_score ON jobs (parent_id) WHERE kind = 'face_score';
CREATE UNIQUE INDEX jobs_one_auto_reroll ON jobs (json_extract(args, '$.auto_reroll_of'))
    WHERE kind = 'take' AND json_extract(args, '$.auto_reroll_of') IS NOT NULL;
