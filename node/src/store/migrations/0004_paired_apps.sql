-- v4: paired apps with scopes (spec §10.5); the credentials table is rebuilt to allow
-- the `app` role.
CREATE TABLE credentials_v4 (
    key          BLOB PRIMARY KEY CHECK (length(key) = 32),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'app')),
    scope        BLOB,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    CHECK ((role = 'app') = (scope IS NOT NULL))
);
INSERT INTO credentials_v4 (key, name, role, created_at, revoked_at)
    SELECT key, name, role, created_at, revoked_at FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_v4 RENAME TO credentials;
CREATE UNIQUE INDEX live_app_names ON credentials (name)
    WHERE role = 'app' AND revoked_at IS NULL;
CREATE TABLE pairings (
    code_hash  BLOB PRIMARY KEY CHECK (length(code_hash) = 32),
    name       TEXT NOT NULL,
    scope      BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE TABLE app_queries (
    key      BLOB NOT NULL CHECK (length(key) = 32),
    query_id BLOB NOT NULL CHECK (length(query_id) = 16),
    PRIMARY KEY (key, query_id)
);
