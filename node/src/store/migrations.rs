//! Versioned schema migrations, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

use super::{Result, StoreError};

/// Each entry moves the schema from version `i` to `i + 1`; the SQL is in `migrations/`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_consent_ask.sql"),
    include_str!("migrations/0003_pending_expiry.sql"),
    include_str!("migrations/0004_paired_apps.sql"),
    include_str!("migrations/0005_audit_index.sql"),
    include_str!("migrations/0006_privacy_budget.sql"),
    include_str!("migrations/0007_card_updates.sql"),
    include_str!("migrations/0008_used_queries.sql"),
    include_str!("migrations/0009_enum_codes.sql"),
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
                     VALUES (90, 'answered', x'{bo}', 'Bo', 'tag:x', 'named nothing');
                 INSERT INTO audit (at, event, peer, peer_name, item, detail)
                     VALUES (91, 'mystery', NULL, NULL, NULL, 'kept');",
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
        // Events are codes now, shown by name; one this build does not know is kept.
        let log = store.audit_log(10).unwrap();
        let shown: Vec<(&str, &str)> = log
            .iter()
            .map(|e| (e.event.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            shown,
            [("unknown", "mystery: kept"), ("answered", "named nothing")]
        );

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
        // Its first announcement: the contacts it had before card updates existed cannot be
        // known to have its card, so they are sent it once; after that, only changes count.
        assert!(store.announce_addresses(None, "127.0.0.1:7400").unwrap());
        assert_eq!(store.contacts_without_current_card().unwrap().len(), 1);
        store.card_delivered(&bo, "127.0.0.1:7400").unwrap();
        assert!(!store.announce_addresses(None, "127.0.0.1:7400").unwrap());
        assert!(store.contacts_without_current_card().unwrap().is_empty());
    }

    /// Version 9 stores enums as codes: a version-8 database's statuses and shares, stored
    /// by name, come back the same.
    #[test]
    fn names_become_codes_with_every_status_and_share() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("kith.db");
        let bo = NodeId([0xb; 32]);
        {
            let mut conn = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS[..8].iter().enumerate() {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", (i + 1) as i64)
                    .unwrap();
            }
            let tx = conn.transaction().unwrap();
            for (i, status) in ["pending", "approved", "denied", "expired"]
                .iter()
                .enumerate()
            {
                tx.execute(
                    "INSERT INTO pending (asker, query_id, item, asked, created_at, status)
                     VALUES (?1, ?2, 'tag:x', 'tag:x', ?3, ?4)",
                    rusqlite::params![&bo.0[..], &[i as u8; 16][..], i as i64, status],
                )
                .unwrap();
            }
            for share in ["none", "count", "ask", "name"] {
                tx.execute(
                    "INSERT INTO policy_rules VALUES ('circle', ?1, 'tag:*', ?1)",
                    [share],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let mut statuses: Vec<PendingStatus> = store
            .pending_requests()
            .unwrap()
            .into_iter()
            .map(|p| p.status)
            .collect();
        statuses.reverse();
        assert_eq!(statuses, PendingStatus::ALL);
        let policy = store.policy().unwrap();
        let x = ItemKey::parse("tag:x").unwrap();
        for share in Share::ALL {
            assert_eq!(policy.evaluate(&bo, share.as_str(), &x), share);
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
