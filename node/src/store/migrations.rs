//! Versioned schema migrations, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

use super::{Result, StoreError};

/// Each entry moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    "
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
    ",
    // 2: consent `ask` — pending approvals on the endorser's side; the asker's record of its
    // asks and of endorsements approved after an ask finished.
    "
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
    ",
    // v3: pending requests can expire (spec §8.5.2). SQLite cannot change a CHECK in
    // place, so the table is rebuilt with its rows and ids.
    "
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
    ",
    // v4: paired apps with scopes (spec §10.5); the credentials table is rebuilt to allow
    // the `app` role.
    "
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
    ",
    // v5: budgets and daily limits count audit entries by event, peer and time.
    "
    CREATE INDEX audit_by_event_peer ON audit (event, peer, at);
    ",
    // v6: the daily privacy budget per asker (spec §9.10): the ε charged for every
    // aggregate answered, in thousandths.
    "
    CREATE TABLE privacy_spend (
        asker         BLOB NOT NULL CHECK (length(asker) = 32),
        at            INTEGER NOT NULL,
        milli_epsilon INTEGER NOT NULL CHECK (milli_epsilon >= 0)
    );
    CREATE INDEX privacy_spend_by_asker ON privacy_spend (asker, at);
    ",
    // v7: whether each contact has this node's current card (spec §8.6): 0 it has, 1 it
    // is to be sent it (the owner changed the addresses this node advertises), 2 it said
    // this node is not its contact (never sent again, until it is stored anew).
    "
    ALTER TABLE contacts ADD COLUMN card_unsent INTEGER NOT NULL DEFAULT 0
        CHECK (card_unsent IN (0, 1, 2));
    ",
    // v8: the (asker, query id) pairs of admitted aggregations, for 24 hours (spec §9.8.2
    // step 4), so that a restart does not let a query id open a second session.
    "
    CREATE TABLE used_queries (
        asker    BLOB NOT NULL CHECK (length(asker) = 32),
        query_id BLOB NOT NULL CHECK (length(query_id) = 16),
        at       INTEGER NOT NULL,
        PRIMARY KEY (asker, query_id)
    );
    CREATE INDEX used_queries_by_time ON used_queries (at);
    ",
];

/// Bring the schema up to date, one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditEvent, Event, Principal, Setting, Store};
    use kith_protocol::app::PendingStatus;
    use kith_protocol::budget::Limits;
    use kith_protocol::{ItemKey, NodeId, QueryId, Share};

    /// A database written by the first release (schema 1), with a row in every table, is
    /// brought to the current schema by opening it: every row is still there and readable,
    /// and what later schemas added works on it.
    #[test]
    fn a_first_schema_database_upgrades_with_its_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("kith.db");
        let (ana, bo) = (NodeId([0xa; 32]), NodeId([0xb; 32]));
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO settings VALUES ('name', 'Ana'), ('listen', '127.0.0.1:7400');
                 INSERT INTO contacts VALUES (x'{bo}', 'Bo', 'friends', x'00', x'{sig}', 100);
                 INSERT INTO endorsements VALUES ('tag:vehicle/subaru', 2, 5, 'snow', 50);
                 INSERT INTO policy_rules VALUES ('circle', 'friends', 'tag:*', 'name');
                 INSERT INTO invites VALUES (x'{id}', x'{secret}', 'family', 10, 20, NULL, NULL);
                 INSERT INTO credentials VALUES (x'{ana}', 'owner', 'owner', 1, NULL);
                 INSERT INTO audit (at, event, peer, peer_name, item, detail)
                     VALUES (90, 'answered', x'{bo}', 'Bo', 'tag:x', 'named nothing');",
                bo = hex(&bo.0),
                ana = hex(&ana.0),
                sig = "11".repeat(64),
                id = "22".repeat(16),
                secret = "33".repeat(32),
            ))
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(
            store.setting(Setting::Name).unwrap().as_deref(),
            Some("Ana")
        );
        let contacts = store.contacts().unwrap();
        assert_eq!((contacts.len(), contacts[0].name.as_str()), (1, "Bo"));
        assert_eq!(store.endorsements().unwrap()[0].count, 2);
        let subaru = ItemKey::parse("tag:vehicle/subaru").unwrap();
        assert_eq!(
            store.policy().unwrap().evaluate(&bo, "friends", &subaru),
            Share::Name
        );
        assert_eq!(store.invites().unwrap()[0].circle, "family");
        assert!(matches!(
            store.principal(&ana).unwrap(),
            Some(Principal::Owner { .. })
        ));
        assert_eq!(store.audit_log(10).unwrap()[0].detail, "named nothing");

        // What later schemas added: pending requests, budgets, card marks, used query ids.
        let qid = QueryId([4; 16]);
        assert!(store.add_pending(&bo, &qid, &subaru, &subaru, 100).unwrap());
        assert_eq!(
            store.pending_requests().unwrap()[0].status,
            PendingStatus::Pending
        );
        let answered = AuditEvent {
            event: Event::Answered,
            peer: Some(bo),
            peer_name: Some("Bo"),
            item: None,
            detail: "aggregate".into(),
        };
        let limits = Limits {
            asks_per_day: 20,
            epsilon_per_day: 4000,
        };
        assert_eq!(
            store
                .charge_answer(100, &answered, limits, 1000, Some(&qid))
                .unwrap(),
            Ok(())
        );
        assert_eq!(store.budget_usage(&bo, 0).unwrap().answered, 2);
        assert_eq!(store.used_queries(0).unwrap(), [(bo, qid, 100)]);
        assert!(store.announce_addresses(None, "127.0.0.1:7400").is_ok());
        assert!(store.contacts_without_current_card().unwrap().is_empty());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
