-- Small key/value facts the bot keeps about itself (e.g. the hash of the last command sync).
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
