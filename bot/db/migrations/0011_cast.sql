-- Cast and voices (issue #17): a channel has named characters, each with its own anchor versions, angles, face and
-- voice. A channel's single anchor becomes its main character, named after the anchor's name when that is a valid
-- cast name (1-32 letters, digits, spaces, - or _; non-ASCII names are not checked here, so they become "main"),
-- else "main". Version numbers still count up per channel (v5 names one image in a channel, whoever it shows), so
-- every take, score and re-roll that names a version keeps working unchanged.
CREATE TABLE characters (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,          -- the name case-folded: names are unique per channel in any case
    is_main     INTEGER NOT NULL DEFAULT 0,
    version_id  INTEGER REFERENCES anchor_versions(id),  -- the current anchor; NULL after /anchor clear
    added_by    INTEGER NOT NULL,
    added_at    REAL NOT NULL,
    removed_at  REAL                    -- removed from the cast (its history stays)
);
CREATE UNIQUE INDEX characters_name ON characters (channel_id, name_key) WHERE removed_at IS NULL;
CREATE UNIQUE INDEX characters_one_main ON characters (channel_id) WHERE is_main = 1 AND removed_at IS NULL;

ALTER TABLE anchor_versions ADD COLUMN character_id INTEGER REFERENCES characters(id);

-- The face box found at intake ([left, top, right, bottom] as JSON): a character without angles sends a crop of it.
ALTER TABLE anchor_faces ADD COLUMN box TEXT;

WITH channels AS (
    SELECT v.guild_id, v.channel_id, v.set_by, v.set_at,
           (SELECT ca.version_id FROM channel_anchors ca WHERE ca.channel_id = v.channel_id) AS current_id,
           (SELECT m.id FROM anchor_versions m WHERE m.channel_id = v.channel_id
             ORDER BY m.version DESC LIMIT 1) AS latest_id
    FROM anchor_versions v WHERE v.version = (
        SELECT MIN(f.version) FROM anchor_versions f WHERE f.channel_id = v.channel_id)
), named AS (
    SELECT c.*, trim((SELECT n.name FROM anchor_versions n WHERE n.id = COALESCE(c.current_id, c.latest_id))) AS name
    FROM channels c
)
INSERT INTO characters (guild_id, channel_id, name, name_key, is_main, version_id, added_by, added_at)
SELECT guild_id, channel_id,
       CASE WHEN name IS NOT NULL AND length(name) BETWEEN 1 AND 32 AND name NOT GLOB '*[^A-Za-z0-9 _-]*'
            THEN name ELSE 'main' END,
       lower(CASE WHEN name IS NOT NULL AND length(name) BETWEEN 1 AND 32 AND name NOT GLOB '*[^A-Za-z0-9 _-]*'
            THEN name ELSE 'main' END),
       1, current_id, set_by, set_at
FROM named;

UPDATE anchor_versions SET character_id = (
    SELECT c.id FROM characters c WHERE c.channel_id = anchor_versions.channel_id AND c.is_main = 1);

DROP TABLE channel_anchors;
CREATE INDEX anchor_versions_character ON anchor_versions (character_id, version);

-- A character's voice (Kling create-voice): the sample the bot keeps (media/voices/<sha256>.wav) and fal's id.
CREATE TABLE voices (
    character_id INTEGER PRIMARY KEY REFERENCES characters(id),
    voice_id     TEXT NOT NULL,
    sample_sha256 TEXT NOT NULL,
    seconds      REAL NOT NULL,
    job_id       INTEGER UNIQUE REFERENCES jobs(id),  -- the create-voice job that made it
    set_by       INTEGER NOT NULL,
    set_at       REAL NOT NULL
);

-- A take's score against each character it names (one row for a take about one character).
CREATE TABLE take_cast_scores (
    take_id          INTEGER NOT NULL REFERENCES jobs(id),
    character_id     INTEGER NOT NULL REFERENCES characters(id),
    position         INTEGER NOT NULL,   -- the character's @ElementN (1 for a take about one character)
    verdict          TEXT NOT NULL CHECK (verdict IN ('match', 'drift', 'no_face')),
    score            INTEGER,
    frames_sampled   INTEGER NOT NULL,
    frames_matching  INTEGER NOT NULL,
    scored_at        REAL NOT NULL,
    PRIMARY KEY (take_id, character_id)
);
CREATE INDEX take_cast_scores_character ON take_cast_scores (character_id);

INSERT INTO take_cast_scores (take_id, character_id, position, verdict, score, frames_sampled, frames_matching,
                              scored_at)
SELECT s.take_id, v.character_id, 1, s.verdict, s.score, s.frames_sampled, s.frames_matching, s.scored_at
FROM take_scores s JOIN anchor_versions v ON v.id = s.anchor_version_id
WHERE v.character_id IS NOT NULL;
