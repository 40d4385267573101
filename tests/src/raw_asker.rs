//! An asker outside kith-node: kith-protocol's own `AggAsker`, driven over raw peer
//! connections in the asker's name, with a hook that sees every request before it is sent
//! and may change it or hold it back. An honest hook gives an honest asker; others give
//! an asker killed mid-query ([`ask_until`]) or a lying one (the adversarial suite).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kith_client::transport;
use kith_protocol::aggregation::asker::{AggAsker, AggOutcome, AggregationParams};
use kith_protocol::aggregation::cohort::{advert_digest, DENSE_MAX};
use kith_protocol::aggregation::messages::{AggRequest, AggResponse};
use kith_protocol::ask::Transmit;
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    ContactFailure, Identity, ItemKey, NodeId, PeerRequest, PeerResponse, QueryId,
};

use crate::stand_in::round_of;
use crate::{raw_peer, TestNode};

/// What the hook does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intercept {
    /// Send it (as the hook left it).
    Send,
    /// Keep it unsent; it is returned in [`RawAsk::held`].
    Hold,
}

/// One request sent and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub to: NodeId,
    pub round: u8,
    /// The frame body as sent (after the hook).
    pub request: Vec<u8>,
    /// The decoded reply, or why there was none.
    pub reply: Result<PeerResponse, String>,
}

impl Exchange {
    /// The aggregation reply, if that is what came back.
    pub fn aggregate(&self) -> Option<&AggResponse> {
        match &self.reply {
            Ok(PeerResponse::Aggregate(r)) => Some(r),
            _ => None,
        }
    }
}

/// What the asker has seen so far, for hooks that need roster positions.
#[derive(Debug, Default)]
pub struct Seen {
    pub log: Vec<Exchange>,
    roster: Vec<[u8; 32]>,
}

impl Seen {
    /// `member`'s position in the roster of U1, once round 1 has been sent.
    pub fn position_of(&self, member: &NodeId) -> Option<u32> {
        let signed = self.log.iter().find_map(|e| match e.aggregate() {
            Some(AggResponse::Advertised { advertisement, .. }) if e.to == *member => {
                Some(advertisement)
            }
            _ => None,
        })?;
        self.roster
            .binary_search(&advert_digest(signed))
            .ok()
            .map(|p| p as u32)
    }
}

/// A finished (or abandoned) raw ask, its connections still open.
pub struct RawAsk {
    pub outcome: AggOutcome,
    pub seen: Seen,
    pub held: Vec<Transmit>,
    conns: HashMap<NodeId, quinn::Connection>,
    _endpoints: Vec<quinn::Endpoint>,
}

impl RawAsk {
    /// The replies of round `round`, by member.
    pub fn replies(&self, round: u8) -> Vec<(NodeId, AggResponse)> {
        self.seen
            .log
            .iter()
            .filter(|e| e.round == round)
            .filter_map(|e| Some((e.to, e.aggregate()?.clone())))
            .collect()
    }

    /// Send `request` (a frame body) to `to` again, on the ask's connection.
    pub async fn send(&self, to: &NodeId, request: &[u8]) -> Result<PeerResponse, String> {
        exchange(&self.conns[to], request).await
    }

    /// The asker "dies": its connections close.
    pub fn kill(self) -> Vec<Transmit> {
        for c in self.conns.values() {
            c.close(0u32.into(), b"asker killed");
        }
        self.held
    }
}

async fn exchange(conn: &quinn::Connection, request: &[u8]) -> Result<PeerResponse, String> {
    let bytes = transport::exchange(conn, request, MAX_PEER_FRAME, MAX_PEER_FRAME)
        .await
        .map_err(|e| e.to_string())?;
    decode_message::<PeerResponse>(&bytes).map_err(|e| e.to_string())
}

/// The parameters every raw ask uses: noise off, minimum cohort 2, 5 s rounds, with detail
/// (every cell aggregated).
pub fn params() -> AggregationParams {
    AggregationParams {
        epsilon: None,
        min_cohort: 2,
        round_timeout: Duration::from_secs(5),
        dense_max: DENSE_MAX,
        detail: true,
    }
}

/// A raw peer connection to each of `members` as `asker`, and the endpoints that hold them.
async fn connect_all(
    asker: &Identity,
    members: &[&TestNode],
) -> (HashMap<NodeId, quinn::Connection>, Vec<quinn::Endpoint>) {
    let mut conns = HashMap::new();
    let mut endpoints = Vec::new();
    for m in members {
        let (endpoint, conn) = raw_peer(m, asker).await;
        conns.insert(m.id(), conn);
        endpoints.push(endpoint);
    }
    (conns, endpoints)
}

/// Run an aggregation about `item` among `members` as `asker`, passing every request
/// through `hook` first.
pub async fn ask_with(
    asker: &Identity,
    members: &[&TestNode],
    item: &ItemKey,
    query_id: QueryId,
    mut hook: impl FnMut(&Seen, &NodeId, &mut AggRequest) -> Intercept,
) -> RawAsk {
    let (conns, endpoints) = connect_all(asker, members).await;
    let ids: Vec<NodeId> = members.iter().map(|m| m.id()).collect();
    let mut agg = AggAsker::new(
        asker.node_id(),
        query_id,
        item.clone(),
        ids,
        params(),
        Instant::now(),
    );
    let mut seen = Seen::default();
    let mut held = Vec::new();
    // Each round is a batch of requests; at most six batches (rounds 0 to 4, and a spare).
    for _ in 0..6 {
        let mut batch = Vec::new();
        while let Some(mut t) = agg.poll_transmit() {
            let Ok(PeerRequest::Aggregate(mut r)) = decode_message::<PeerRequest>(&t.payload)
            else {
                batch.push((0, t));
                continue;
            };
            if let AggRequest::ShareKeys { roster, .. } = &r {
                seen.roster = roster.clone();
            }
            match hook(&seen, &t.to, &mut r) {
                Intercept::Hold => held.push(t),
                Intercept::Send => {
                    let round = round_of(&r);
                    t.payload = encode_message(&PeerRequest::Aggregate(r));
                    batch.push((round, t));
                }
            }
        }
        if batch.is_empty() {
            break;
        }
        for (round, t) in batch {
            let reply = exchange(&conns[&t.to], &t.payload).await;
            match &reply {
                Ok(r) => agg.handle_response(t.to, &encode_message(r), Instant::now()),
                Err(e) => {
                    agg.handle_failure(t.to, ContactFailure::Unreachable(e.clone()), Instant::now())
                }
            }
            seen.log.push(Exchange {
                to: t.to,
                round,
                request: t.payload,
                reply,
            });
        }
    }
    RawAsk {
        outcome: agg.outcome(),
        seen,
        held,
        conns,
        _endpoints: endpoints,
    }
}

/// Run an aggregation as [`ask_with`] an honest hook, stop before sending any request of
/// round `stop_at`, and die; the requests not sent are returned.
pub async fn ask_until(
    asker: &Identity,
    members: &[&TestNode],
    item: &ItemKey,
    query_id: QueryId,
    stop_at: u8,
) -> Vec<Transmit> {
    let hold = |_: &Seen, _: &NodeId, r: &mut AggRequest| {
        if round_of(r) >= stop_at {
            Intercept::Hold
        } else {
            Intercept::Send
        }
    };
    ask_with(asker, members, item, query_id, hold).await.kill()
}

/// A raw ask in which the asker also fields `sybils` members of its own: fresh keys (no
/// invites, nobody's contact) running modified software that adds no noise, answered in
/// this process, next to the real nodes `members` reached over QUIC. Returns the outcome,
/// whose `raw` sum the attacker reads. Spec §11.13.
pub async fn ask_with_sybils(
    asker: &Identity,
    members: &[&TestNode],
    sybils: usize,
    item: &ItemKey,
    query_id: QueryId,
    params: AggregationParams,
) -> AggOutcome {
    use kith_protocol::aggregation::input::Contribution;
    use kith_protocol::aggregation::responder::ResponderSettings;
    use kith_protocol::testing::SimMember;
    use rand_core::OsRng;

    let (conns, endpoints) = connect_all(asker, members).await;
    let mut fake: HashMap<NodeId, SimMember> = (0..sybils)
        .map(|_| {
            let id = Identity::generate(&mut OsRng);
            let mut sybil =
                SimMember::new(id, Contribution::default()).with_settings(ResponderSettings {
                    epsilon: None,
                    min_cohort: 2,
                });
            sybil.noiseless = true;
            (sybil.identity.node_id(), sybil)
        })
        .collect();
    let ids: Vec<NodeId> = members
        .iter()
        .map(|m| m.id())
        .chain(fake.keys().copied())
        .collect();
    let start = Instant::now();
    let mut agg = AggAsker::new(asker.node_id(), query_id, item.clone(), ids, params, start);
    for _ in 0..6 {
        let mut batch = Vec::new();
        while let Some(t) = agg.poll_transmit() {
            batch.push(t);
        }
        if batch.is_empty() {
            break;
        }
        for t in batch {
            let reply = match fake.get_mut(&t.to) {
                Some(sybil) => {
                    let Ok(PeerRequest::Aggregate(r)) = decode_message::<PeerRequest>(&t.payload)
                    else {
                        continue;
                    };
                    let deadline = start + Duration::from_secs(60);
                    let now = Instant::now();
                    match sybil.answer(asker.node_id(), r, &mut OsRng, now, deadline) {
                        Some(response) => Ok(PeerResponse::Aggregate(response)),
                        None => continue,
                    }
                }
                None => exchange(&conns[&t.to], &t.payload).await,
            };
            match reply {
                Ok(r) => agg.handle_response(t.to, &encode_message(&r), Instant::now()),
                Err(e) => agg.handle_failure(t.to, ContactFailure::Unreachable(e), Instant::now()),
            }
        }
    }
    drop(endpoints);
    agg.outcome()
}
