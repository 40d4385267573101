-- 1: initial schema
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE contacts (
    node_id   BLOB PRIMARY KEY CHECK (length(node_id) = 32),
    name      TEXT NOT NULL,
    circle    TEXT NOT NULL,
    card      BLOB NOT NULL,
    signature BLOB NOT NULL CHECK (length(signature) = 64),
    added_at  INTEGER NOT NULL
);
CREATE TABLE endorsements (
    item   TEXT PRIMARY KEY,
    count  INTEGER NOT NULL CHECK (count >= 1),
    rating INTEGER CHECK (rating BETWEEN 1 AND 5),
    note   TEXT,
    since  INTEGER NOT NULL
);
CREATE TABLE policy_rules (
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('circle', 'contact')),
    subject      TEXT NOT NULL,
    items        TEXT NOT NULL,
    share        TEXT NOT NULL CHECK (share IN ('none', 'count', 'ask', 'name')),
    PRIMARY KEY (subject_kind, subject, items)
);
CREATE TABLE invites (
    id         BLOB PRIMARY KEY CHECK (length(id) = 16),
    secret     BLOB NOT NULL CHECK (length(secret) = 32),
    circle     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    BLOB
);
CREATE TABLE credentials (
    key        BLOB PRIMARY KEY CHECK (length(key) = 32),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('owner')),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    event     TEXT NOT NULL,
    peer      BLOB,
    peer_name TEXT,
    item      TEXT,
    detail    TEXT NOT NULL
);
