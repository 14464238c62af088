-- One number per shot, counted per server (issue #19): the same in a clip's title, its footer and the spend report.
-- A job that starts a numbered series (a take that is a new shot) draws the next value of its server's counter in
-- the transaction that queues it (so a refused request leaves no gap); its re-rolls share the number.
ALTER TABLE jobs ADD COLUMN number INTEGER;

CREATE TABLE counters (
    guild_id INTEGER NOT NULL,
    series   TEXT NOT NULL,
    value    INTEGER NOT NULL,
    PRIMARY KEY (guild_id, series)
);

-- Shots made before: numbered per server in the order they were made; re-rolls take their shot's number.
UPDATE jobs SET number = (
    SELECT COUNT(*) FROM jobs AS earlier
    WHERE earlier.kind = 'take' AND earlier.parent_id IS NULL
      AND earlier.guild_id = jobs.guild_id AND earlier.id <= jobs.id
) WHERE kind = 'take' AND parent_id IS NULL;
UPDATE jobs SET number = (SELECT shot.number FROM jobs AS shot WHERE shot.id = jobs.parent_id)
    WHERE kind = 'take' AND parent_id IS NOT NULL;
INSERT INTO counters (guild_id, series, value)
    SELECT guild_id, 'shot', MAX(number) FROM jobs WHERE kind = 'take' AND number IS NOT NULL GROUP BY guild_id;
