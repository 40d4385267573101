-- 2: consent `ask` — pending approvals on the endorser's side; the asker's record of its
-- asks and of endorsements approved after an ask finished.
CREATE TABLE pending (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    asker      BLOB NOT NULL CHECK (length(asker) = 32),
    query_id   BLOB NOT NULL CHECK (length(query_id) = 16),
    item       TEXT NOT NULL,
    asked      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    decided_at INTEGER,
    UNIQUE (asker, query_id, item)
);
CREATE TABLE asks (
    query_id BLOB PRIMARY KEY CHECK (length(query_id) = 16),
    item     TEXT NOT NULL,
    asked_at INTEGER NOT NULL
);
CREATE TABLE late_endorsements (
    query_id    BLOB NOT NULL,
    endorser    BLOB NOT NULL,
    statement   BLOB NOT NULL,
    signature   BLOB NOT NULL CHECK (length(signature) = 64),
    received_at INTEGER NOT NULL,
    PRIMARY KEY (query_id, endorser, statement)
);
