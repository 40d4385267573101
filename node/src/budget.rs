//! Per-asker budgets (spec §9.10, §11.9): how many asks of one contact this node answers
//! in any 24 hours, plain `Ask`s and aggregations alike, and an audit of the declines that a
//! flooding contact cannot grow without bound.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kith_protocol::NodeId;

use crate::node::Shared;
use crate::store::{AuditEvent, Event};
use crate::unix_now;

/// At most one `rate-limited` audit entry per asker in this long; the next entry says how
/// many declines it stands for.
pub const DECLINE_AUDIT_INTERVAL: Duration = Duration::from_secs(600);

/// The budget lock and the decline tallies.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Held from the budget check to the `answered` audit entry that counts the ask, so
    /// that concurrent asks cannot all pass the check before any of them is counted.
    admission: Mutex<()>,
    /// Per asker: when its last `rate-limited` entry was written, and declines since. One
    /// entry per contact ever declined, so bounded by the contact list.
    declines: Mutex<HashMap<NodeId, (Instant, u64)>>,
}

/// Why an ask is over budget, or that the store could not say.
pub(crate) enum OverBudget {
    /// `asked` answered asks in the last 24 h, at or over `limit`.
    Daily {
        asked: u32,
        limit: u32,
    },
    /// The ε charged to the asker in the last 24 h plus this ask's `cost` would pass its
    /// daily privacy budget (all in thousandths; spec §9.10).
    Privacy {
        spent: u64,
        cost: u32,
        limit: u32,
    },
    Store,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverBudget::Daily { asked, limit } => write!(f, "{asked} asks in 24 h (limit {limit})"),
            OverBudget::Privacy { spent, cost, limit } => write!(
                f,
                "privacy budget: ε {} used in 24 h of {}, this ask needs {}",
                crate::settings::format_epsilon(Some(*spent as u32)),
                crate::settings::format_epsilon(Some(*limit)),
                crate::settings::format_epsilon(Some(*cost)),
            ),
            OverBudget::Store => f.write_str("store unreadable"),
        }
    }
}

impl Budget {
    /// Take the budget lock and check `asker`'s answered asks of the last 24 h against
    /// `limit`. The caller writes the `answered` entry before dropping the guard.
    pub(crate) fn admit<'a>(
        &'a self,
        shared: &Shared,
        asker: &NodeId,
        limit: u32,
    ) -> Result<MutexGuard<'a, ()>, OverBudget> {
        let guard = self.admission.lock().unwrap_or_else(|p| p.into_inner());
        let since = unix_now().saturating_sub(24 * 3600);
        let asked = shared
            .store
            .count_audit_since(Event::Answered, asker, since)
            .map_err(|e| {
                tracing::error!("store: {e}");
                OverBudget::Store
            })?;
        if asked >= limit {
            return Err(OverBudget::Daily { asked, limit });
        }
        Ok(guard)
    }

    /// With the budget lock held (the guard of [`Budget::admit`]): whether an aggregate
    /// costing `cost` thousandths of ε fits `asker`'s daily privacy budget `limit`
    /// (spec §9.10). The caller records the charge before dropping the guard.
    pub(crate) fn check_privacy(
        &self,
        shared: &Shared,
        asker: &NodeId,
        cost: u32,
        limit: u32,
    ) -> Result<(), OverBudget> {
        let since = unix_now().saturating_sub(24 * 3600);
        let spent = shared
            .store
            .privacy_spent_since(asker, since)
            .map_err(|e| {
                tracing::error!("store: {e}");
                OverBudget::Store
            })?;
        if spent + cost as u64 > limit as u64 {
            return Err(OverBudget::Privacy { spent, cost, limit });
        }
        Ok(())
    }

    /// Record that an ask of `asker` (contact `name`) about `item` was declined for `why`:
    /// an audit entry at most every [`DECLINE_AUDIT_INTERVAL`] per asker, which counts the
    /// declines since the previous one.
    pub(crate) fn declined(
        &self,
        shared: &Shared,
        asker: NodeId,
        name: &str,
        item: String,
        why: &str,
    ) {
        let now = Instant::now();
        let unlisted = {
            let mut declines = self.declines.lock().unwrap_or_else(|p| p.into_inner());
            match declines.get_mut(&asker) {
                Some((at, since)) if now.duration_since(*at) < DECLINE_AUDIT_INTERVAL => {
                    *since += 1;
                    return;
                }
                Some(entry) => std::mem::replace(entry, (now, 0)).1,
                None => {
                    declines.insert(asker, (now, 0));
                    0
                }
            }
        };
        let mut detail = format!("declined: {why}");
        if unlisted > 0 {
            detail += &format!("; and {unlisted} more declined since the previous entry");
        }
        shared.audit(AuditEvent {
            event: Event::RateLimited,
            peer: Some(asker),
            peer_name: Some(name),
            item: Some(item),
            detail,
        });
    }
}
