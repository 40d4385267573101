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
use crate::ask::{ContactFailure, Transmit};
use crate::identity::{Identity, NodeId};
use crate::item::ItemKey;
use crate::message::{Answer, PeerRequest, PeerResponse, QueryId};
use crate::wire::{decode_message, encode_message};

use rand_core::CryptoRngCore;

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

    /// A member that knows every one of `cohort` but itself (spec §9.6.2).
    pub fn knowing(mut self, cohort: impl IntoIterator<Item = NodeId>) -> Self {
        let me = self.identity.node_id();
        self.contacts = cohort.into_iter().filter(|v| *v != me).collect();
        self
    }

    /// With `settings` in place of the defaults.
    pub fn with_settings(mut self, settings: ResponderSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Its answer to `request` from `asker`, as the reference node gives it without the
    /// node's tables (no budget, no named answer): an `Advertise` opens its session, keys
    /// from `SimRng(key_seed)` if set, else from `rng`, with its modifications; any other
    /// round goes to that session. `None` for a round with no session open.
    pub fn answer(
        &mut self,
        asker: NodeId,
        request: AggRequest,
        rng: &mut impl CryptoRngCore,
        now: Instant,
        deadline: Instant,
    ) -> Option<AggResponse> {
        let AggRequest::Advertise {
            query_id,
            epsilon,
            detail,
            ..
        } = request
        else {
            return Some(self.session.as_mut()?.handle(request, rng, now));
        };
        let ctx = Context { query_id, asker };
        let mut own_keys = self.key_seed.map(SimRng);
        let mut keys: &mut dyn CryptoRngCore = match own_keys.as_mut() {
            Some(own) => own,
            None => rng,
        };
        let mut s = AggResponder::start(
            &self.identity,
            ctx,
            self.contribution,
            self.settings,
            AskTerms { epsilon, detail },
            self.contacts.clone(),
            &mut keys,
            deadline,
        );
        if self.noiseless {
            s = s.dangerous_noiseless();
        }
        if let Some(d) = self.declares {
            s = s.dangerous_declare_base(d);
        }
        let advertisement = s.advertisement().clone();
        self.session = Some(s);
        Some(AggResponse::Advertised {
            answer: Answer {
                query_id,
                named: vec![],
            },
            advertisement,
        })
    }

    /// Its session, once an `Advertise` opened one.
    pub fn session(&self) -> Option<&AggResponder> {
        self.session.as_ref()
    }

    /// Its session, to drive directly.
    pub fn session_mut(&mut self) -> Option<&mut AggResponder> {
        self.session.as_mut()
    }

    /// Its session, taken out.
    pub fn into_session(self) -> Option<AggResponder> {
        self.session
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

/// What became of one request in a simulation.
#[derive(Debug)]
pub enum Delivery {
    /// The member's reply, as its bytes on the wire.
    Reply(Vec<u8>),
    /// No reply: the asker waits for the round's deadline.
    Silent,
    /// The request failed at once (unreachable, refused).
    Failed(ContactFailure),
}

/// How a driven ask went.
#[derive(Debug, Clone, Copy)]
pub struct Driven {
    /// The virtual time at its end.
    pub now: Instant,
    /// How often the clock jumped to a round's deadline for silent members.
    pub waits: u32,
}

/// Most batches of requests [`drive`] sends before it gives up: five rounds, each perhaps
/// waited out, with room to spare.
const MAX_BATCHES: usize = 100;

/// Drive `agg` to its end on a virtual clock from `start`: each batch of requests goes to
/// `deliver(transmit, now)` in order, and what they came to reaches the asker `step`
/// later, in the same order; when only silent members are left, the clock jumps to the
/// round's deadline. The one loop of every simulated ask, bench and vector run.
pub fn drive(
    agg: &mut AggAsker,
    start: Instant,
    step: Duration,
    mut deliver: impl FnMut(&Transmit, Instant) -> Delivery,
) -> Driven {
    let mut driven = Driven {
        now: start,
        waits: 0,
    };
    for _batch in 0..MAX_BATCHES {
        if agg.is_done() {
            break;
        }
        let mut transmits = Vec::new();
        while let Some(t) = agg.poll_transmit() {
            transmits.push(t);
        }
        if transmits.is_empty() {
            driven.now = agg.poll_timeout().expect("not done");
            driven.waits += 1;
            agg.handle_timeout(driven.now);
            continue;
        }
        let delivered: Vec<(NodeId, Delivery)> = transmits
            .iter()
            .map(|t| (t.to, deliver(t, driven.now)))
            .collect();
        driven.now += step;
        for (from, delivery) in delivered {
            match delivery {
                Delivery::Reply(bytes) => agg.handle_response(from, &bytes, driven.now),
                Delivery::Failed(failure) => agg.handle_failure(from, failure, driven.now),
                Delivery::Silent => {}
            }
        }
    }
    driven
}

/// The aggregation request a simulated asker sent.
pub fn aggregation_request(payload: &[u8]) -> AggRequest {
    match decode_message::<PeerRequest>(payload) {
        Ok(PeerRequest::Aggregate(request)) => request,
        other => panic!("an aggregation request, not {other:?}"),
    }
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
    let mut masked = BTreeSet::new();
    let deadline = start + Duration::from_secs(60);
    let driven = drive(&mut agg, start, Duration::from_millis(10), |t, now| {
        let m = members.get_mut(&t.to).unwrap();
        let req = aggregation_request(&t.payload);
        let round = round_of(&req);
        if m.drops_at.is_some_and(|d| d <= round) {
            return Delivery::Silent; // from this round on
        }
        let response = m
            .answer(asker.node_id(), req, rng, now, deadline)
            .expect("a round after the member's Advertise");
        if ignore(&t.to, round) {
            return Delivery::Silent;
        }
        if round == 2 && matches!(response, AggResponse::Masked(_)) {
            masked.insert(t.to);
        }
        Delivery::Reply(encode_message(&PeerResponse::Aggregate(response)))
    });
    let now = driven.now;
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
