-- v9: the enums are stored as their codes, not their names: audit events
-- (`store::Event::code`), pending requests' status (`PendingStatus`, its wire code) and
-- consent rules' share (`Share`, its wire code). A name can then change without a
-- migration, and a query cannot miss rows through a misspelt name. The names stay what
-- `kith audit`, the app API and the CLI show. An audit event this build does not know
-- (none was ever written) is kept as 255 "unknown", its name at the head of its detail.
CREATE TABLE audit_v9 (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    event     INTEGER NOT NULL CHECK (event BETWEEN 0 AND 16 OR event = 255),
    peer      BLOB,
    peer_name TEXT,
    item      TEXT,
    detail    TEXT NOT NULL
);
INSERT INTO audit_v9 (id, at, event, peer, peer_name, item, detail)
    SELECT id, at,
        CASE event
            WHEN 'answered' THEN 0
            WHEN 'counted' THEN 1
            WHEN 'asked' THEN 2
            WHEN 'rate-limited' THEN 3
            WHEN 'contact-added' THEN 4
            WHEN 'contact-removed' THEN 5
            WHEN 'contact-moved' THEN 6
            WHEN 'pending' THEN 7
            WHEN 'approved' THEN 8
            WHEN 'denied' THEN 9
            WHEN 'late-endorsement' THEN 10
            WHEN 'app-pairing' THEN 11
            WHEN 'app-paired' THEN 12
            WHEN 'app-ask' THEN 13
            WHEN 'app-request' THEN 14
            WHEN 'app-denied' THEN 15
            WHEN 'app-revoked' THEN 16
            ELSE 255
        END,
        peer, peer_name, item,
        CASE WHEN event IN ('answered', 'counted', 'asked', 'rate-limited', 'contact-added',
                            'contact-removed', 'contact-moved', 'pending', 'approved',
                            'denied', 'late-endorsement', 'app-pairing', 'app-paired',
                            'app-ask', 'app-request', 'app-denied', 'app-revoked')
            THEN detail
            ELSE event || ': ' || detail
        END
    FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v9 RENAME TO audit;
CREATE INDEX audit_by_event_peer ON audit (event, peer, at);

CREATE TABLE pending_v9 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    asker      BLOB NOT NULL CHECK (length(asker) = 32),
    query_id   BLOB NOT NULL CHECK (length(query_id) = 16),
    item       TEXT NOT NULL,
    asked      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- 0 pending, 1 approved, 2 denied, 3 expired (spec §10.3)
    status     INTEGER NOT NULL CHECK (status BETWEEN 0 AND 3),
    decided_at INTEGER,
    UNIQUE (asker, query_id, item)
);
INSERT INTO pending_v9 (id, asker, query_id, item, asked, created_at, status, decided_at)
    SELECT id, asker, query_id, item, asked, created_at,
        CASE status WHEN 'pending' THEN 0 WHEN 'approved' THEN 1 WHEN 'denied' THEN 2
                    WHEN 'expired' THEN 3 END,
        decided_at
    FROM pending;
DROP TABLE pending;
ALTER TABLE pending_v9 RENAME TO pending;

CREATE TABLE policy_rules_v9 (
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('circle', 'contact')),
    subject      TEXT NOT NULL,
    items        TEXT NOT NULL,
    -- 0 none, 1 count, 2 ask, 3 name (spec §6.3)
    share        INTEGER NOT NULL CHECK (share BETWEEN 0 AND 3),
    PRIMARY KEY (subject_kind, subject, items)
);
INSERT INTO policy_rules_v9 (subject_kind, subject, items, share)
    SELECT subject_kind, subject, items,
        CASE share WHEN 'none' THEN 0 WHEN 'count' THEN 1 WHEN 'ask' THEN 2
                   WHEN 'name' THEN 3 END
    FROM policy_rules;
DROP TABLE policy_rules;
ALTER TABLE policy_rules_v9 RENAME TO policy_rules;
