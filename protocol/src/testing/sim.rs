//! Simulated aggregations: one driver that runs an [`AggAsker`] against simulated members
//! on a virtual clock, with dropouts, modified-software members and an asker that may
//! pretend a member's reply never came. Used by the protocol's simulation and attack tests
//! and by the node's test crates.
//!
//! Test support for §9.8; not part of the protocol.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::aggregation::asker::{AggAsker, AggOutcome, AggregationParams};
use crate::aggregation::cohort::DENSE_MAX;
use crate::aggregation::input::Contribution;
use crate::aggregation::keys::Context;
use crate::aggregation::messages::{AggRequest, AggResponse};
use crate::aggregation::responder::{AggResponder, AskTerms, ResponderSettings};
use crate::identity::{Identity, NodeId};
use crate::item::ItemKey;
use crate::message::{Answer, PeerRequest, PeerResponse, QueryId};
use crate::wire::{decode_message, encode_message};

use super::SimRng;

/// One simulated member of a cohort.
#[derive(Debug)]
pub struct SimMember {
    pub identity: Identity,
    pub contribution: Contribution,
    pub settings: ResponderSettings,
    /// The owner's contacts: whom it may vouch for.
    pub contacts: BTreeSet<NodeId>,
    /// The round (0..=4) in which it goes silent, if any.
    pub drops_at: Option<u8>,
    /// Modified software run by the asker (a Sybil): adds no noise.
    pub noiseless: bool,
    /// Modified software: the base divisor it declares, whatever it added.
    pub declares: Option<u32>,
    /// Draw the session's keys from `SimRng(seed)`, so that the same query id gives the
    /// same advertisement in every ask (an attacker's precomputed roster); else from the
    /// run's RNG.
    pub key_seed: Option<u64>,
    session: Option<AggResponder>,
}

impl SimMember {
    /// An honest member with the default settings (ε = 1, minimum cohort 5), no contacts.
    pub fn new(identity: Identity, contribution: Contribution) -> Self {
        SimMember {
            identity,
            contribution,
            settings: ResponderSettings {
                epsilon: Some(1000),
                min_cohort: 5,
            },
            contacts: BTreeSet::new(),
            drops_at: None,
            noiseless: false,
            declares: None,
            key_seed: None,
            session: None,
        }
    }
}

/// The ε-DP bound on guessing a bit: `e^ε / (1 + e^ε)`.
pub fn dp_bound(epsilon: f64) -> f64 {
    epsilon.exp() / (1.0 + epsilon.exp())
}

/// The bound plus three standard errors of an accuracy measured over `trials`.
pub fn allowed(epsilon: f64, trials: usize) -> f64 {
    let p = dp_bound(epsilon);
    p + 3.0 * (p * (1.0 - p) / trials as f64).sqrt()
}

/// A count-only contribution: owns one or not.
pub fn owns(yes: bool) -> Contribution {
    Contribution {
        owns: yes,
        units: yes as u32,
        best_rating: None,
    }
}

/// Make every member of `group` a contact of every other.
pub fn know_each_other(members: &mut BTreeMap<NodeId, SimMember>, group: &[NodeId]) {
    for a in group {
        let m = members.get_mut(a).unwrap();
        m.contacts.extend(group.iter().filter(|b| *b != a));
    }
}

/// The asker's defaults: no ε of its own, minimum cohort 3, owners only.
pub fn asker_params() -> AggregationParams {
    AggregationParams {
        epsilon: None,
        min_cohort: 3,
        round_timeout: Duration::from_secs(1),
        dense_max: DENSE_MAX,
        detail: false,
    }
}

/// The round of a request (see [`AggRequest::round`]).
pub fn round_of(r: &AggRequest) -> u8 {
    r.round()
}

/// Run one ask of `members` by `asker` to the end. `ignore(member, round)` is the asker
/// lying: the member answers, but the asker acts as if the reply never came. Returns the
/// outcome and the members whose masked input reached the asker.
pub fn run_ask(
    rng: &mut SimRng,
    asker: &Identity,
    members: &mut BTreeMap<NodeId, SimMember>,
    params: AggregationParams,
    query_id: QueryId,
    mut ignore: impl FnMut(&NodeId, u8) -> bool,
) -> (AggOutcome, BTreeSet<NodeId>) {
    let start = Instant::now();
    let item = ItemKey::parse("tag:vehicle/subaru").unwrap();
    let mut agg = AggAsker::new(
        asker.node_id(),
        query_id,
        item,
        members.keys().copied(),
        params,
        start,
    );
    let mut now = start;
    let mut masked = BTreeSet::new();
    for _step in 0..100 {
        if agg.is_done() {
            break;
        }
        let mut transmits = Vec::new();
        while let Some(t) = agg.poll_transmit() {
            transmits.push(t);
        }
        if transmits.is_empty() {
            // Waiting only on silent members: the virtual clock jumps to the deadline.
            now = agg.poll_timeout().expect("not done");
            agg.handle_timeout(now);
            continue;
        }
        let mut replies = Vec::new();
        for t in transmits {
            let m = members.get_mut(&t.to).unwrap();
            let Ok(PeerRequest::Aggregate(req)) = decode_message::<PeerRequest>(&t.payload) else {
                panic!("an aggregation request")
            };
            let round = round_of(&req);
            if m.drops_at.is_some_and(|d| d <= round) {
                continue; // silent from this round on
            }
            let response = match req {
                AggRequest::Advertise {
                    query_id,
                    epsilon,
                    detail,
                    ..
                } => {
                    let ctx = Context {
                        query_id,
                        asker: asker.node_id(),
                    };
                    let mut own_keys = m.key_seed.map(SimRng);
                    let mut s = AggResponder::start(
                        &m.identity,
                        ctx,
                        m.contribution,
                        m.settings,
                        AskTerms { epsilon, detail },
                        m.contacts.clone(),
                        own_keys.as_mut().unwrap_or(rng),
                        start + Duration::from_secs(60),
                    );
                    if m.noiseless {
                        s = s.dangerous_noiseless();
                    }
                    if let Some(d) = m.declares {
                        s = s.dangerous_declare_base(d);
                    }
                    let advertisement = s.advertisement().clone();
                    m.session = Some(s);
                    AggResponse::Advertised {
                        answer: Answer {
                            query_id,
                            named: vec![],
                        },
                        advertisement,
                    }
                }
                other => {
                    let r = m.session.as_mut().unwrap().handle(other, rng, now);
                    if round == 2 && matches!(r, AggResponse::Masked(_)) {
                        masked.insert(t.to);
                    }
                    r
                }
            };
            if ignore(&t.to, round) {
                if round == 2 {
                    masked.remove(&t.to);
                }
                continue;
            }
            replies.push((t.to, encode_message(&PeerResponse::Aggregate(response))));
        }
        now += Duration::from_millis(10);
        for (from, bytes) in replies {
            agg.handle_response(from, &bytes, now);
        }
    }
    assert!(agg.is_done(), "finished within bounded steps");
    // The asker closes every session that may still be open (spec §9.8.4); a member that
    // is still there drops it and says so.
    while let Some(t) = agg.poll_transmit() {
        let Ok(PeerRequest::Aggregate(req @ AggRequest::Close { .. })) =
            decode_message::<PeerRequest>(&t.payload)
        else {
            panic!("only closing requests after the end")
        };
        let m = members.get_mut(&t.to).unwrap();
        if m.drops_at.is_some() {
            continue;
        }
        if let Some(s) = m.session.as_mut() {
            assert_eq!(s.handle(req, rng, now), AggResponse::Closed);
            assert!(s.is_finished());
        }
    }
    (agg.outcome(), masked)
}
