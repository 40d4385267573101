//! Per-asker budgets (spec §9.10, §11.9): how many asks of one contact this node answers
//! in any 24 hours, plain `Ask`s and aggregations alike, and an audit of the declines that a
//! flooding contact cannot grow without bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kith_protocol::budget::{self, Limits, OverBudget};
use kith_protocol::NodeId;

use crate::store::{AuditEvent, Event, Store};
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
    declines: Mutex<HashMap<NodeId, Declines>>,
}

/// One asker's declines since its last `rate-limited` entry.
#[derive(Debug)]
struct Declines {
    /// When the last entry was written.
    at: Instant,
    /// Declines not in any entry yet.
    unlisted: u64,
    /// For the entry that lists them: the asker's name and the last item and cause.
    name: String,
    item: String,
    why: String,
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
    store: &Store,
    asker: &NodeId,
    limits: Limits,
    cost: u32,
) -> Result<Result<(), OverBudget>, crate::store::StoreError> {
    let used = store.budget_usage(asker, budget::window_start(unix_now()))?;
    Ok(budget::check(used, limits, cost))
}

impl Budget {
    /// Record that an ask of `asker` (contact `name`) about `item` was declined for `why`:
    /// an audit entry at most every [`DECLINE_AUDIT_INTERVAL`] per asker, which counts the
    /// declines since the previous one.
    pub(crate) fn declined(
        &self,
        store: &Store,
        asker: NodeId,
        name: &str,
        item: String,
        why: &str,
    ) {
        let now = Instant::now();
        let unlisted = {
            let mut declines = self.declines.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = Declines {
                at: now,
                unlisted: 0,
                name: name.to_string(),
                item: item.clone(),
                why: why.to_string(),
            };
            match declines.get_mut(&asker) {
                Some(d) if now.duration_since(d.at) < DECLINE_AUDIT_INTERVAL => {
                    d.unlisted += 1;
                    (d.name, d.item, d.why) = (fresh.name, fresh.item, fresh.why);
                    return;
                }
                Some(d) => std::mem::replace(d, fresh).unlisted,
                None => {
                    declines.insert(asker, fresh);
                    0
                }
            }
        };
        let mut detail = format!("declined: {why}");
        if unlisted > 0 {
            detail += &format!("; and {unlisted} more declined since the previous entry");
        }
        store.record(&AuditEvent {
            event: Event::RateLimited,
            peer: Some(asker),
            peer_name: Some(name),
            item: Some(item),
            detail,
        });
    }

    /// Write an entry for every asker with declines not listed yet (at shutdown, so that a
    /// restart does not lose them).
    pub(crate) fn flush(&self, store: &Store) {
        let waiting: Vec<(NodeId, Declines)> = {
            let mut declines = self.declines.lock().unwrap_or_else(|p| p.into_inner());
            declines
                .iter_mut()
                .filter(|(_, d)| d.unlisted > 0)
                .map(|(asker, d)| {
                    let taken = Declines {
                        at: d.at,
                        unlisted: std::mem::take(&mut d.unlisted),
                        name: d.name.clone(),
                        item: d.item.clone(),
                        why: d.why.clone(),
                    };
                    (*asker, taken)
                })
                .collect()
        };
        for (asker, d) in waiting {
            store.record(&AuditEvent {
                event: Event::RateLimited,
                peer: Some(asker),
                peer_name: Some(&d.name),
                item: Some(d.item),
                detail: format!(
                    "declined: {}; {} declined since the previous entry",
                    d.why, d.unlisted
                ),
            });
        }
    }
}
