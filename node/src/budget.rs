//! Per-asker budgets (spec §9.10, §11.9): how many asks of one contact this node answers
//! in any 24 hours, plain `Ask`s and aggregations alike, and an audit of the declines that a
//! flooding contact cannot grow without bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kith_protocol::budget::{self, Limits, OverBudget};
use kith_protocol::NodeId;

use crate::node::Shared;
use crate::store::{AuditEvent, Event};
use crate::unix_now;

/// At most one `rate-limited` audit entry per asker in this long; the next entry says how
/// many declines it stands for.
pub const DECLINE_AUDIT_INTERVAL: Duration = Duration::from_secs(600);

/// The tally of declines. The budget itself is counted in the store, and checked and
/// recorded with each answered ask in one transaction ([`crate::store::Store::charge_answer`]).
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Per asker: when its last `rate-limited` entry was written, and declines since. One
    /// entry per contact ever declined, so bounded by the contact list.
    declines: Mutex<HashMap<NodeId, (Instant, u64)>>,
}

/// The settings' limits, as the budget rule takes them.
pub(crate) fn limits(settings: &crate::settings::AggSettings) -> Limits {
    Limits {
        asks_per_day: settings.asks_per_day,
        epsilon_per_day: settings.epsilon_per_day,
    }
}

/// Whether an ask of `asker` costing `cost` would fit, read without recording anything:
/// a cheap check before the work of answering (signatures, keys). Recording checks again.
pub(crate) fn precheck(
    shared: &Shared,
    asker: &NodeId,
    limits: Limits,
    cost: u32,
) -> Result<Result<(), OverBudget>, crate::store::StoreError> {
    let used = shared
        .store
        .budget_usage(asker, budget::window_start(unix_now()))?;
    Ok(budget::check(used, limits, cost))
}

impl Budget {
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
