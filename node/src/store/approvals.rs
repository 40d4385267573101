//! Consent `ask` (spec §8.5): the endorser's pending approvals, and the asker's record of
//! its asks and of endorsements delivered after an ask finished.

use kith_protocol::app::{PendingRequest, PendingStatus};
use kith_protocol::{ItemKey, NodeId, QueryId, Signature, SignedEndorsement};
use rusqlite::{params, OptionalExtension, Row};

use super::{blob32, Result, Store, StoreError};

/// A pending-request row as SQLite returns it.
type PendingRow = (
    i64,
    Vec<u8>,
    Option<String>,
    Vec<u8>,
    String,
    String,
    i64,
    i64,
);

fn pending_from_row(r: &Row<'_>) -> rusqlite::Result<PendingRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn build(row: PendingRow) -> Result<PendingRequest> {
    let (id, asker, name, qid, item, asked, created_at, status) = row;
    let corrupt = |what: &str| StoreError::Corrupt(format!("pending request {id}: {what}"));
    Ok(PendingRequest {
        id: id as u64,
        asker: NodeId(blob32(asker)?),
        asker_name: name.unwrap_or_default(),
        query_id: QueryId(qid.try_into().map_err(|_| corrupt("query id"))?),
        item: ItemKey::parse(&item).map_err(|_| corrupt("item"))?,
        asked: ItemKey::parse(&asked).map_err(|_| corrupt("asked item"))?,
        created_at: created_at as u64,
        status: PendingStatus::ALL
            .into_iter()
            .find(|s| i64::from(s.wire_code()) == status)
            .ok_or_else(|| corrupt("status"))?,
    })
}

const PENDING_SELECT: &str =
    "SELECT p.id, p.asker, c.name, p.query_id, p.item, p.asked, p.created_at, p.status
     FROM pending p LEFT JOIN contacts c ON c.node_id = p.asker";

impl Store {
    /// Record that `asker` would learn `item` by name if the owner approves. Idempotent for
    /// the same (asker, query, item). Returns whether a new request was created.
    pub fn add_pending(
        &self,
        asker: &NodeId,
        query_id: &QueryId,
        item: &ItemKey,
        asked: &ItemKey,
        now: u64,
    ) -> Result<bool> {
        Ok(self.conn().execute(
            "INSERT OR IGNORE INTO pending (asker, query_id, item, asked, created_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                &asker.0[..],
                &query_id.0[..],
                item.to_string(),
                asked.to_string(),
                now as i64,
                PendingStatus::Pending.wire_code()
            ],
        )? > 0)
    }

    /// Every request, newest first.
    pub fn pending_requests(&self) -> Result<Vec<PendingRequest>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!("{PENDING_SELECT} ORDER BY p.id DESC LIMIT 1000"))?;
        let rows = stmt
            .query_map([], pending_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(build).collect()
    }

    pub fn pending_request(&self, id: u64) -> Result<Option<PendingRequest>> {
        let conn = self.read();
        let row = conn
            .query_row(
                &format!("{PENDING_SELECT} WHERE p.id = ?1"),
                params![id as i64],
                pending_from_row,
            )
            .optional()?;
        row.map(build).transpose()
    }

    /// Move a request from `pending` to `status`; false if it was already decided.
    pub fn decide_pending(&self, id: u64, status: PendingStatus, now: u64) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE pending SET status = ?2, decided_at = ?3 WHERE id = ?1 AND status = ?4",
            params![
                id as i64,
                status.wire_code(),
                now as i64,
                PendingStatus::Pending.wire_code()
            ],
        )? > 0)
    }

    /// Mark every request still pending that was created before `before` as `expired`.
    pub fn expire_pending(&self, before: u64, now: u64) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE pending SET status = ?3, decided_at = ?2
             WHERE status = ?4 AND created_at < ?1",
            params![
                before as i64,
                now as i64,
                PendingStatus::Expired.wire_code(),
                PendingStatus::Pending.wire_code()
            ],
        )?)
    }

    /// Put an approved request back to pending (its delivery failed).
    pub fn reopen_pending(&self, id: u64) -> Result<()> {
        self.conn().execute(
            "UPDATE pending SET status = ?2, decided_at = NULL WHERE id = ?1 AND status = ?3",
            params![
                id as i64,
                PendingStatus::Pending.wire_code(),
                PendingStatus::Approved.wire_code()
            ],
        )?;
        Ok(())
    }

    /// The asker side: remember an ask so that late endorsements for it can be accepted.
    pub fn record_ask(&self, query_id: &QueryId, item: &ItemKey, now: u64) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO asks (query_id, item, asked_at) VALUES (?1, ?2, ?3)",
            params![&query_id.0[..], item.to_string(), now as i64],
        )?;
        Ok(())
    }

    /// The item and time of one of our asks.
    pub fn ask_record(&self, query_id: &QueryId) -> Result<Option<(ItemKey, u64)>> {
        let row: Option<(String, i64)> = self
            .read()
            .query_row(
                "SELECT item, asked_at FROM asks WHERE query_id = ?1",
                params![&query_id.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(item, at)| {
            Ok((
                ItemKey::parse(&item).map_err(|_| StoreError::Corrupt("ask item".into()))?,
                at as u64,
            ))
        })
        .transpose()
    }

    /// Store a verified late endorsement; false if it was already stored.
    /// Keep a late endorsement unless it is a duplicate or `endorser` already has `cap`
    /// kept for this query; whether it was kept.
    pub fn add_late_endorsement(
        &self,
        query_id: &QueryId,
        endorser: &NodeId,
        signed: &SignedEndorsement,
        now: u64,
        cap: u32,
    ) -> Result<bool> {
        Ok(self.conn().execute(
            "INSERT OR IGNORE INTO late_endorsements (query_id, endorser, statement, signature, received_at)
             SELECT ?1, ?2, ?3, ?4, ?5
             WHERE (SELECT count(*) FROM late_endorsements WHERE query_id = ?1 AND endorser = ?2) < ?6",
            params![&query_id.0[..], &endorser.0[..], signed.statement, &signed.signature.0[..], now as i64, cap],
        )? > 0)
    }

    /// Late endorsements, newest first, at most 1000: (query id, endorser, signed
    /// statement, received at). Only those of `query_id` if given, and only those of asks
    /// the paired app `app` made if given (filtered before the limit).
    pub fn late_endorsements(
        &self,
        query_id: Option<&QueryId>,
        app: Option<&NodeId>,
    ) -> Result<Vec<(QueryId, NodeId, SignedEndorsement, u64)>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT query_id, endorser, statement, signature, received_at FROM late_endorsements
             WHERE (?1 IS NULL OR query_id = ?1)
               AND (?2 IS NULL OR query_id IN (SELECT query_id FROM app_queries WHERE key = ?2))
             ORDER BY received_at DESC LIMIT 1000",
        )?;
        let filter: Option<Vec<u8>> = query_id.map(|q| q.0.to_vec());
        let app: Option<Vec<u8>> = app.map(|k| k.0.to_vec());
        let rows = stmt
            .query_map(params![filter, app], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(q, e, statement, sig, at)| {
                let corrupt = || StoreError::Corrupt("late endorsement".into());
                Ok((
                    QueryId(q.try_into().map_err(|_| corrupt())?),
                    NodeId(blob32(e)?),
                    SignedEndorsement {
                        statement,
                        signature: Signature(sig.try_into().map_err(|_| corrupt())?),
                    },
                    at as u64,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_endorsements_are_capped_per_contact_and_query() {
        let store = Store::open_in_memory().unwrap();
        let (q, other_q) = (QueryId([1; 16]), QueryId([2; 16]));
        let (bruno, chloe) = (NodeId([3; 32]), NodeId([4; 32]));
        let signed = |i: u8| SignedEndorsement {
            statement: vec![i],
            signature: Signature([0; 64]),
        };
        for i in 0..3 {
            assert!(store
                .add_late_endorsement(&q, &bruno, &signed(i), 10, 3)
                .unwrap());
        }
        assert!(
            !store
                .add_late_endorsement(&q, &bruno, &signed(9), 10, 3)
                .unwrap(),
            "capped"
        );
        assert!(
            !store
                .add_late_endorsement(&q, &bruno, &signed(0), 10, 9)
                .unwrap(),
            "duplicate"
        );
        assert!(store
            .add_late_endorsement(&q, &chloe, &signed(0), 10, 3)
            .unwrap());
        assert!(store
            .add_late_endorsement(&other_q, &bruno, &signed(0), 10, 3)
            .unwrap());
        assert_eq!(store.late_endorsements(Some(&q), None).unwrap().len(), 4);
    }

    /// An app's updates are those of its own asks, chosen before the 1000-row limit: a
    /// thousand newer updates of the owner's asks do not hide them.
    #[test]
    fn an_apps_updates_are_filtered_before_the_limit() {
        let store = Store::open_in_memory().unwrap();
        let (app, endorser) = (NodeId([7; 32]), NodeId([8; 32]));
        let apps_ask = QueryId([1; 16]);
        store.add_app_query(&app, &apps_ask).unwrap();
        let signed = |i: u16| SignedEndorsement {
            statement: i.to_be_bytes().to_vec(),
            signature: Signature([0; 64]),
        };
        store
            .add_late_endorsement(&apps_ask, &endorser, &signed(0), 10, 3)
            .unwrap();
        for i in 0..1000u16 {
            let owners_ask = QueryId([(i % 200) as u8 + 2; 16]);
            let from = NodeId([(i / 200) as u8 + 10; 32]);
            store
                .add_late_endorsement(&owners_ask, &from, &signed(i + 1), 20 + i as u64, 3)
                .unwrap();
        }
        assert_eq!(store.late_endorsements(None, None).unwrap().len(), 1000);
        let mine = store.late_endorsements(None, Some(&app)).unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].0, apps_ask);
    }

    #[test]
    fn old_pending_requests_expire() {
        let store = Store::open_in_memory().unwrap();
        let item = ItemKey::parse("tag:book").unwrap();
        let asker = NodeId([5; 32]);
        store
            .add_pending(&asker, &QueryId([1; 16]), &item, &item, 100)
            .unwrap();
        store
            .add_pending(&asker, &QueryId([2; 16]), &item, &item, 200)
            .unwrap();
        assert_eq!(store.expire_pending(150, 300).unwrap(), 1);
        let statuses: Vec<PendingStatus> = store
            .pending_requests()
            .unwrap()
            .into_iter()
            .map(|p| p.status)
            .collect();
        assert_eq!(statuses, [PendingStatus::Pending, PendingStatus::Expired]);
        assert!(
            !store
                .decide_pending(1, PendingStatus::Approved, 300)
                .unwrap(),
            "expired is decided"
        );
    }
}
