//! Plain `Ask`s answered in the last minute, with their answers (spec §8.3.2 step 1): a
//! copy of one — a retry, or the stale-connection race of §4.5 sending it on two
//! connections — gets the same answer and is not counted against the budget again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
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
    /// Asks being answered now, one lock each: a copy arriving meanwhile waits for the
    /// first and is then answered from what it kept, so two copies in flight at once are
    /// counted once too. An entry lives only while its ask is being answered.
    flights: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
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
    fn get(&self, asker: NodeId, query: &Query, now: Instant) -> Option<PeerResponse> {
        let mut kept = self.lock();
        kept.prune(now);
        kept.answers.get(&(asker, query.clone())).cloned()
    }

    /// Answer `query` from `asker` with `answer_once`, unless this very ask was answered in
    /// the last minute or is being answered now (then its answer, once it is given).
    /// Blocking: call it off the async workers.
    pub(crate) fn answer(
        &self,
        asker: NodeId,
        query: Query,
        answer_once: impl FnOnce(Query) -> PeerResponse,
    ) -> PeerResponse {
        let key = (asker, query);
        let flight = self
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let response = {
            let _one = flight.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            match self.get(asker, &key.1, now) {
                Some(given) => given,
                None => {
                    let response = answer_once(key.1.clone());
                    if matches!(response, PeerResponse::Answer(_)) {
                        self.insert(asker, key.1.clone(), response.clone(), now);
                    }
                    response
                }
            }
        };
        // The last one out removes the flight (the map holds one reference, we the other).
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&flight) == 2 {
            flights.remove(&key);
        }
        response
    }

    /// Forget every answer: the owner changed what the node would answer.
    pub(crate) fn clear(&self) {
        let mut kept = self.lock();
        kept.answers.clear();
        kept.order.clear();
    }

    /// Keep `answer`, given at `now` to `query` from `asker`.
    fn insert(&self, asker: NodeId, query: Query, answer: PeerResponse, now: Instant) {
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

    #[test]
    fn copies_in_flight_at_once_are_answered_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let kept = Arc::new(AnsweredAsks::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let answer = kith_protocol::Answer {
            query_id: QueryId([1; 16]),
            named: vec![],
        };
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (kept, calls, answer) = (kept.clone(), calls.clone(), answer.clone());
                std::thread::spawn(move || {
                    kept.answer(NodeId([1; 32]), query(1), |_| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        PeerResponse::Answer(answer)
                    })
                })
            })
            .collect();
        for t in threads {
            assert!(matches!(t.join().unwrap(), PeerResponse::Answer(_)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(
            kept.flights.lock().unwrap().is_empty(),
            "flights are removed"
        );
    }
}
