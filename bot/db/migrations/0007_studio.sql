-- Angles (the identity pack): up to 3 extra views of an anchor version, sent to Kling as an element's references.
CREATE TABLE anchor_angles (
    id         INTEGER PRIMARY KEY,
    version_id INTEGER NOT NULL REFERENCES anchor_versions(id),
    sha256     TEXT NOT NULL REFERENCES images(sha256),
    added_by   INTEGER NOT NULL,
    added_at   REAL NOT NULL
);
CREATE INDEX anchor_angles_version ON anchor_angles(version_id, id);
