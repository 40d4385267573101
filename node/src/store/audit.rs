//! The audit log: every query answered, refused or sent, and every contact change.
//! Entries never contain note text or keys other than public node ids.

use kith_protocol::app::AuditEntry;
use kith_protocol::budget::{self, Limits, OverBudget, Usage};
use kith_protocol::{NodeId, QueryId};
use rusqlite::params;

use super::{Result, Store, StoreError};

/// Answered asks and ε charged since `since`: what the budget rule counts (spec §9.10).
fn usage(conn: &rusqlite::Connection, asker: &NodeId, since: u64) -> Result<Usage> {
    let answered = count_since(conn, Event::Answered, Some(asker), since)?;
    let spent: i64 = conn.query_row(
        "SELECT coalesce(sum(milli_epsilon), 0) FROM privacy_spend WHERE asker = ?1 AND at >= ?2",
        params![&asker.0[..], since as i64],
        |r| r.get(0),
    )?;
    Ok(Usage {
        answered,
        spent: spent.max(0) as u64,
    })
}

/// Entries of `event` about `peer` at or after `since`: what every "N per 24 h" rule
/// counts — a contact's `asks-per-day` (`answered`), an app's daily limit (`app-ask`).
pub(super) fn count_since(
    conn: &rusqlite::Connection,
    event: Event,
    peer: Option<&NodeId>,
    since: u64,
) -> Result<u32> {
    Ok(conn.query_row(
        "SELECT count(*) FROM audit WHERE event = ?1 AND peer = ?2 AND at >= ?3",
        params![event.code(), peer.map(|p| p.0.to_vec()), since as i64],
        |r| r.get(0),
    )?)
}

pub(super) fn insert(conn: &rusqlite::Connection, at: u64, e: &AuditEvent<'_>) -> Result<()> {
    conn.execute(
        "INSERT INTO audit (at, event, peer, peer_name, item, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at as i64, e.event.code(), e.peer.map(|p| p.0.to_vec()), e.peer_name, e.item, e.detail],
    )?;
    Ok(())
}

/// What an audit entry records (spec §8.3.5, §10.5). Stored as its code
/// ([`Event::code`], explicit below and never reused) and shown to the owner as its name
/// ([`Event::as_str`]); budgets count entries by it, so it is never spelled twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Event {
    /// A contact's ask was answered (named, aggregate, or both); budgets count these.
    Answered = 0,
    /// This node's input is in a sum the asker can release (round 4).
    Counted = 1,
    /// This node asked its contacts.
    Asked = 2,
    /// An ask was declined for a budget or a limit.
    RateLimited = 3,
    ContactAdded = 4,
    ContactRemoved = 5,
    /// A contact sent a new card with other addresses (spec §8.6).
    ContactMoved = 6,
    /// A request waits for the owner (share `ask`).
    Pending = 7,
    Approved = 8,
    Denied = 9,
    /// A named endorsement arrived after the ask finished.
    LateEndorsement = 10,
    AppPairing = 11,
    AppPaired = 12,
    /// An app's ask; apps' daily limits count these.
    AppAsk = 13,
    AppRequest = 14,
    AppDenied = 15,
    AppRevoked = 16,
}

impl Event {
    pub const ALL: [Event; 17] = [
        Event::Answered,
        Event::Counted,
        Event::Asked,
        Event::RateLimited,
        Event::ContactAdded,
        Event::ContactRemoved,
        Event::ContactMoved,
        Event::Pending,
        Event::Approved,
        Event::Denied,
        Event::LateEndorsement,
        Event::AppPairing,
        Event::AppPaired,
        Event::AppAsk,
        Event::AppRequest,
        Event::AppDenied,
        Event::AppRevoked,
    ];

    /// The code it is stored as.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The event stored as `code`, if this build knows it.
    pub fn from_code(code: i64) -> Option<Event> {
        Event::ALL.into_iter().find(|e| i64::from(e.code()) == code)
    }

    /// The event's name, as shown (`kith audit`, spec §8.3.5).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Answered => "answered",
            Event::Counted => "counted",
            Event::Asked => "asked",
            Event::RateLimited => "rate-limited",
            Event::ContactAdded => "contact-added",
            Event::ContactRemoved => "contact-removed",
            Event::ContactMoved => "contact-moved",
            Event::Pending => "pending",
            Event::Approved => "approved",
            Event::Denied => "denied",
            Event::LateEndorsement => "late-endorsement",
            Event::AppPairing => "app-pairing",
            Event::AppPaired => "app-paired",
            Event::AppAsk => "app-ask",
            Event::AppRequest => "app-request",
            Event::AppDenied => "app-denied",
            Event::AppRevoked => "app-revoked",
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub event: Event,
    pub peer: Option<NodeId>,
    pub peer_name: Option<&'a str>,
    pub item: Option<String>,
    pub detail: String,
}

impl Store {
    /// Record `e` now; a failure to audit is logged, never silently dropped.
    pub fn record(&self, e: &AuditEvent<'_>) {
        if let Err(err) = self.audit(crate::unix_now(), e) {
            tracing::error!(event = e.event.as_str(), "could not write audit log: {err}");
        }
    }

    pub fn audit(&self, at: u64, e: &AuditEvent<'_>) -> Result<()> {
        insert(&self.conn(), at, e)
    }

    /// Record `e` only if fewer than `limit` entries with the same event and peer exist since
    /// `since` (all when `limit` is `None`), counting and inserting in one transaction, so
    /// that concurrent requests cannot all pass the count. Returns the count found and
    /// whether `e` was recorded.
    pub fn audit_within_limit(
        &self,
        at: u64,
        e: &AuditEvent<'_>,
        since: u64,
        limit: Option<u32>,
    ) -> Result<(u32, bool)> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let used = count_since(&tx, e.event, e.peer.as_ref(), since)?;
        if limit.is_some_and(|l| used >= l) {
            return Ok((used, false));
        }
        insert(&tx, at, e)?;
        tx.commit()?;
        Ok((used, true))
    }

    /// How many `event` entries about `peer` were written since `since`.
    pub fn audit_count(&self, event: Event, peer: &NodeId, since: u64) -> Result<u32> {
        count_since(&self.read(), event, Some(peer), since)
    }

    /// Newest first.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_page(None, None, None, limit)
    }

    /// Entries newest first: with an id below `before`, about `peer`, about `item` or a
    /// tag below it; at most `limit`.
    pub fn audit_page(
        &self,
        before: Option<u64>,
        peer: Option<&NodeId>,
        item: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT id, at, event, peer, peer_name, item, detail FROM audit
             WHERE (?2 IS NULL OR id < ?2)
               AND (?3 IS NULL OR peer = ?3)
               AND (?4 IS NULL OR item = ?4 OR substr(item, 1, length(?4) + 1) = ?4 || '/')
             ORDER BY id DESC LIMIT ?1",
        )?;
        let before = before.map(|b| b.min(i64::MAX as u64) as i64);
        let peer = peer.map(|p| p.0.to_vec());
        let rows = stmt
            .query_map(params![limit, before, peer, item], |r| {
                let peer: Option<Vec<u8>> = r.get(3)?;
                Ok(AuditEntry {
                    id: r.get::<_, i64>(0)? as u64,
                    at: r.get::<_, i64>(1)? as u64,
                    event: Event::from_code(r.get(2)?)
                        .map_or("unknown", Event::as_str)
                        .to_string(),
                    peer: peer.and_then(|p| p.try_into().ok()).map(NodeId),
                    peer_name: r.get(4)?,
                    item: r.get(5)?,
                    detail: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

impl Store {
    /// What `asker` used of its daily budget since `since` (spec §9.10).
    pub fn budget_usage(&self, asker: &NodeId, since: u64) -> Result<Usage> {
        usage(&self.read(), asker, since)
    }

    /// Answer an ask of `entry.peer` only if it fits its budget (spec §9.10): in one
    /// transaction, count what the window used, check one more ask costing `cost`
    /// thousandths of ε, and record it — the `answered` entry, the ε charged, and for an
    /// aggregation its query id as used (spec §9.8.2 step 4). `Ok(Err)` if it does not
    /// fit, and nothing is written; `Err` if it could not be recorded, in which case the
    /// ask must not be answered (the budget fails closed).
    pub fn charge_answer(
        &self,
        at: u64,
        entry: &AuditEvent<'_>,
        limits: Limits,
        cost: u32,
        used_query: Option<&QueryId>,
    ) -> Result<std::result::Result<(), OverBudget>> {
        let asker = entry
            .peer
            .ok_or_else(|| StoreError::Corrupt("an answered ask names no asker".into()))?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let used = usage(&tx, &asker, budget::window_start(at))?;
        if let Err(over) = budget::check(used, limits, cost) {
            return Ok(Err(over));
        }
        insert(&tx, at, entry)?;
        if cost > 0 {
            tx.execute(
                "INSERT INTO privacy_spend (asker, at, milli_epsilon) VALUES (?1, ?2, ?3)",
                params![&asker.0[..], at as i64, cost],
            )?;
        }
        if let Some(qid) = used_query {
            tx.execute(
                "INSERT OR REPLACE INTO used_queries (asker, query_id, at) VALUES (?1, ?2, ?3)",
                params![&asker.0[..], &qid.0[..], at as i64],
            )?;
        }
        // What no budget counts any more goes: this asker's rows before the window.
        let window = budget::window_start(at) as i64;
        tx.execute(
            "DELETE FROM privacy_spend WHERE asker = ?1 AND at < ?2",
            params![&asker.0[..], window],
        )?;
        tx.execute(
            "DELETE FROM used_queries WHERE asker = ?1 AND at < ?2",
            params![&asker.0[..], window],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// The (asker, query id) pairs used at or after `since`, oldest first, after forgetting
    /// older ones (spec §9.8.2 step 4).
    pub fn used_queries(&self, since: u64) -> Result<Vec<(NodeId, QueryId, u64)>> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM used_queries WHERE at < ?1",
            params![since as i64],
        )?;
        let mut stmt = conn
            .prepare("SELECT asker, query_id, at FROM used_queries WHERE at >= ?1 ORDER BY at")?;
        let rows = stmt
            .query_map(params![since as i64], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(a, q, at)| {
                let qid: [u8; 16] = q
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("used query id length".into()))?;
                Ok((NodeId(super::blob32(a)?), QueryId(qid), at.max(0) as u64))
            })
            .collect()
    }
}
