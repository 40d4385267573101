-- v3: pending requests can expire (spec §8.5.2). SQLite cannot change a CHECK in
-- place, so the table is rebuilt with its rows and ids.
CREATE TABLE pending_v3 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    asker      BLOB NOT NULL CHECK (length(asker) = 32),
    query_id   BLOB NOT NULL CHECK (length(query_id) = 16),
    item       TEXT NOT NULL,
    asked      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    decided_at INTEGER,
    UNIQUE (asker, query_id, item)
);
INSERT INTO pending_v3 (id, asker, query_id, item, asked, created_at, status, decided_at)
    SELECT id, asker, query_id, item, asked, created_at, status, decided_at FROM pending;
DROP TABLE pending;
ALTER TABLE pending_v3 RENAME TO pending;
