-- Normalised images, content-addressed: one row per distinct file under DATA_DIR/media/images/.
CREATE TABLE images (
    sha256          TEXT PRIMARY KEY,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    size_bytes      INTEGER NOT NULL,
    created_at      REAL NOT NULL,
    fal_url         TEXT,
    fal_uploaded_at REAL
);

-- Every anchor a channel ever had; version numbers count up per channel.
CREATE TABLE anchor_versions (
    id            INTEGER PRIMARY KEY,
    guild_id      INTEGER NOT NULL,
    channel_id    INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    sha256        TEXT NOT NULL REFERENCES images(sha256),
    name          TEXT,
    set_by        INTEGER NOT NULL,
    set_at        REAL NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    source_format TEXT NOT NULL,
    UNIQUE (channel_id, version)
);

-- The channel's current anchor; version_id NULL means cleared (history stays).
CREATE TABLE channel_anchors (
    channel_id INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    version_id INTEGER REFERENCES anchor_versions(id),
    updated_at REAL NOT NULL
);

-- Start images of other shapes derived from an anchor image (centred crops), cached per ratio.
CREATE TABLE derived_images (
    source_sha256  TEXT NOT NULL REFERENCES images(sha256),
    ratio          TEXT NOT NULL,
    derived_sha256 TEXT NOT NULL REFERENCES images(sha256),
    PRIMARY KEY (source_sha256, ratio)
);
