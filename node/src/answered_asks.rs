//! Plain `Ask`s answered in the last minute, with their answers (spec §8.3.2 step 1): a
//! copy of one — a retry, or the stale-connection race of §4.5 sending it on two
//! connections — gets the same answer and is not counted against the budget again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kith_protocol::{NodeId, PeerResponse, Query};

/// How long an answer is kept for its copies.
pub const KEEP_FOR: Duration = Duration::from_secs(60);
/// Most answers kept; the oldest go first (a copy that misses them is answered, and
/// counted, again).
pub const MAX_KEPT: usize = 1000;

type Key = (NodeId, Query);

#[derive(Debug, Default)]
pub(crate) struct AnsweredAsks {
    inner: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    answers: HashMap<Key, PeerResponse>,
    order: VecDeque<(Instant, Key)>,
}

impl Kept {
    fn prune(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.front() {
            if now.duration_since(*at) < KEEP_FOR && self.order.len() <= MAX_KEPT {
                break;
            }
            self.answers.remove(key);
            self.order.pop_front();
        }
    }
}

impl AnsweredAsks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer given to this very ask from `asker` in the last minute, if any.
    pub(crate) fn get(&self, asker: NodeId, query: &Query, now: Instant) -> Option<PeerResponse> {
        let mut kept = self.lock();
        kept.prune(now);
        kept.answers.get(&(asker, query.clone())).cloned()
    }

    /// Forget every answer: the owner changed what the node would answer.
    pub(crate) fn clear(&self) {
        let mut kept = self.lock();
        kept.answers.clear();
        kept.order.clear();
    }

    /// Keep `answer`, given at `now` to `query` from `asker`.
    pub(crate) fn insert(&self, asker: NodeId, query: Query, answer: PeerResponse, now: Instant) {
        let mut kept = self.lock();
        let key = (asker, query);
        if kept.answers.insert(key.clone(), answer).is_none() {
            kept.order.push_back((now, key));
        }
        kept.prune(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_protocol::{ItemKey, QueryId, Refusal};

    fn query(n: u8) -> Query {
        Query {
            query_id: QueryId([n; 16]),
            item: ItemKey::parse("tag:x").unwrap(),
        }
    }

    #[test]
    fn a_copy_within_a_minute_gets_the_same_answer() {
        let kept = AnsweredAsks::default();
        let (ana, bo) = (NodeId([1; 32]), NodeId([2; 32]));
        let t0 = Instant::now();
        let answer = PeerResponse::Refused(Refusal::Internal); // any response
        kept.insert(ana, query(1), answer.clone(), t0);
        assert_eq!(kept.get(ana, &query(1), t0 + KEEP_FOR / 2), Some(answer));
        assert_eq!(kept.get(bo, &query(1), t0), None, "another asker");
        assert_eq!(kept.get(ana, &query(2), t0), None, "another query");
        let mut other_item = query(1);
        other_item.item = ItemKey::parse("tag:y").unwrap();
        assert_eq!(
            kept.get(ana, &other_item, t0),
            None,
            "the same id, another item"
        );
        assert_eq!(kept.get(ana, &query(1), t0 + KEEP_FOR), None, "forgotten");
        for n in 0..=MAX_KEPT as u16 {
            let mut q = query(0);
            q.query_id.0[..2].copy_from_slice(&n.to_le_bytes());
            kept.insert(ana, q, PeerResponse::Received, t0);
        }
        assert_eq!(kept.lock().answers.len(), MAX_KEPT);
        kept.clear();
        assert_eq!(kept.get(ana, &query(1), t0), None);
    }
}
