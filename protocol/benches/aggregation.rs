//! Costs of secure aggregation (spec §9): the primitives the rounds are made of, each
//! round's cost for one responder and for the asker, at n = 10, 100 and 1000 over the
//! complete and the sparse graph, and a whole aggregation with every party in one process.
//!
//! `cargo bench -p kith-protocol --bench aggregation` (the complete graph at n = 1000 first
//! records a run of a thousand O(n) responders, several minutes; filter it out with
//! `-- --skip 1000/complete` when in a hurry).
//!
//! Per-round figures come from a recorded run: the responder (or asker) is rebuilt from the
//! same seeds and fed the recorded requests (or replies) of the earlier rounds in the
//! untimed setup, then the timed routine handles one round.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use kith_protocol::aggregation::asker::{AggAsker, AggregationParams};
use kith_protocol::aggregation::cohort::{sparse_degree, DENSE_MAX};
use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::messages::{AggRequest, AggResponse};
use kith_protocol::aggregation::responder::{AggResponder, ResponderSettings};
use kith_protocol::aggregation::{prg, shamir};
use kith_protocol::wire::encode_message;
use kith_protocol::*;
use rand_core::OsRng;

use kith_protocol::testing::SimRng;
use kith_protocol::testing::{aggregation_request, drive, Delivery, SimMember};

const SETTINGS: ResponderSettings = ResponderSettings {
    epsilon: Some(1000),
    min_cohort: 2,
};
const QUERY: QueryId = QueryId([3; 16]);

fn primitives(c: &mut Criterion) {
    let a = Identity::generate(&mut OsRng);
    let b = Identity::generate(&mut OsRng);
    let sig = a.sign(SigningLabel::SecAggConsistency, b"message");
    c.bench_function("x25519 agreement", |bench| {
        bench.iter(|| a.agree(&b.sealing_public_key()))
    });
    c.bench_function("ed25519 verify (ring)", |bench| {
        bench.iter(|| {
            a.node_id()
                .verify(SigningLabel::SecAggConsistency, b"message", &sig, "b")
        })
    });
    c.bench_function("prg expand 7 words", |bench| {
        bench.iter(|| prg::expand(&[7; 32], 7))
    });
    let mut g = c.benchmark_group("shamir");
    for holders in [10u32, 31, 117, 250] {
        let t = 2 * holders as usize / 3 + 1;
        let xs: Vec<u32> = (1..=holders).collect();
        g.bench_with_input(BenchmarkId::new("split", holders), &holders, |bench, _| {
            bench.iter(|| shamir::split(&shamir::random_scalar(&mut OsRng), t, &xs, &mut OsRng))
        });
        g.bench_with_input(
            BenchmarkId::new("lagrange", holders),
            &holders,
            |bench, _| bench.iter(|| shamir::lagrange_at_zero(&xs[..t])),
        );
    }
    g.finish();
}

/// One complete aggregation, recorded: every member's seed, the requests the member at
/// `target` received, and every reply the asker received, by round.
struct Recording {
    asker: Identity,
    members: Vec<Identity>,
    params: AggregationParams,
    now: Instant,
    target: usize,
    target_requests: Vec<AggRequest>,
    replies: Vec<Vec<(NodeId, Vec<u8>)>>,
    degree: u32,
}

fn member_rng(i: usize) -> SimRng {
    SimRng(0x5eed_0000 + i as u64)
}

/// Run one aggregation among `n` members with the complete graph up to `dense_max`.
fn record(n: usize, dense_max: usize) -> Recording {
    let mut rng = SimRng(n as u64);
    let asker = Identity::generate(&mut rng);
    let members: Vec<Identity> = (0..n).map(|_| Identity::generate(&mut rng)).collect();
    let index: BTreeMap<NodeId, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.node_id(), i))
        .collect();
    let now = Instant::now();
    let params = AggregationParams {
        epsilon: Some(1000),
        min_cohort: 2,
        round_timeout: Duration::from_secs(3600),
        dense_max,
        detail: false,
    };
    let mut agg = AggAsker::new(
        asker.node_id(),
        QUERY,
        ItemKey::parse("tag:x").unwrap(),
        members.iter().map(|m| m.node_id()),
        params,
        now,
    );
    let target = 0;
    let mut sessions = BTreeMap::new();
    let mut target_requests = Vec::new();
    let mut replies: Vec<Vec<(NodeId, Vec<u8>)>> = vec![Vec::new(); 5];
    let driven = drive(&mut agg, now, Duration::ZERO, |t, now| {
        let i = index[&t.to];
        let req = aggregation_request(&t.payload);
        let round = req.round() as usize;
        if i == target && round > 0 {
            target_requests.push(req.clone());
        }
        let response = respond(&asker, &members, i, &mut sessions, req, now);
        let bytes = encode_message(&PeerResponse::Aggregate(response));
        replies[round].push((t.to, bytes.clone()));
        Delivery::Reply(bytes)
    });
    assert_eq!(driven.waits, 0, "a recorded run never waits");
    assert!(agg.is_done(), "a recorded run finishes");
    let outcome = agg.outcome();
    assert!(outcome.aggregate.is_ok(), "{:?}", outcome.aggregate);
    assert_eq!(target_requests.len(), 4);
    let degree = match &target_requests[0] {
        AggRequest::ShareKeys { params, .. } => params.degree,
        _ => unreachable!(),
    };
    Recording {
        asker,
        members,
        params,
        now,
        target,
        target_requests,
        replies,
        degree,
    }
}

/// Member `i`'s answer to `req`, its session and RNG kept in `sessions`.
fn respond(
    asker: &Identity,
    members: &[Identity],
    i: usize,
    sessions: &mut BTreeMap<usize, (SimMember, SimRng)>,
    req: AggRequest,
    now: Instant,
) -> AggResponse {
    let (member, rng) = sessions.entry(i).or_insert_with(|| {
        let id = Identity::from_secret_bytes(&members[i].to_secret_bytes()).expect("a key");
        // The members all know each other: each verifies every neighbour's consistency
        // signature in round 4, the most a member does.
        let member = SimMember::new(id, Contribution::default())
            .with_settings(SETTINGS)
            .knowing(members.iter().map(|m| m.node_id()));
        (member, member_rng(i))
    });
    let deadline = now + Duration::from_secs(3600);
    member
        .answer(asker.node_id(), req, rng, now, deadline)
        .expect("advertised")
}

impl Recording {
    /// The target member, replayed up to (not including) round `round` (1..=4).
    fn target_before(&self, round: usize) -> (AggResponder, SimRng) {
        let mut sessions = BTreeMap::new();
        let advertise = AggRequest::Advertise {
            query_id: QUERY,
            item: ItemKey::parse("tag:x").unwrap(),
            epsilon: self.params.epsilon,
            detail: false,
        };
        respond(
            &self.asker,
            &self.members,
            self.target,
            &mut sessions,
            advertise,
            self.now,
        );
        for req in &self.target_requests[..round - 1] {
            respond(
                &self.asker,
                &self.members,
                self.target,
                &mut sessions,
                req.clone(),
                self.now,
            );
        }
        let (member, rng) = sessions.remove(&self.target).expect("session");
        (member.into_session().expect("advertised"), rng)
    }

    /// The asker, fed every reply before round `round` (0..=4).
    fn asker_before(&self, round: usize) -> AggAsker {
        let mut agg = AggAsker::new(
            self.asker.node_id(),
            QUERY,
            ItemKey::parse("tag:x").unwrap(),
            self.members.iter().map(|m| m.node_id()),
            self.params,
            self.now,
        );
        for replies in &self.replies[..round] {
            while agg.poll_transmit().is_some() {}
            for (from, bytes) in replies {
                agg.handle_response(*from, bytes, self.now);
            }
        }
        while agg.poll_transmit().is_some() {}
        agg
    }
}

const ROUNDS: [&str; 5] = [
    "0 advertise",
    "1 share keys",
    "2 masked input",
    "3 consistency",
    "4 unmask",
];

/// Each round's cost for one responder and for the asker.
fn rounds(c: &mut Criterion) {
    // (n, graph): the complete graph, and the sparse graph wherever n admits one.
    let configs: Vec<(usize, &str, usize)> = vec![
        (10, "complete", usize::MAX),
        (100, "complete", usize::MAX),
        (100, "sparse", 0),
        (1000, "sparse", DENSE_MAX),
        (1000, "complete", usize::MAX),
    ];
    for (n, graph, dense_max) in configs {
        let recording: OnceCell<Recording> = OnceCell::new();
        let get = || recording.get_or_init(|| record(n, dense_max));
        let mut g = c.benchmark_group(format!("aggregation rounds/{n}/{graph}"));
        g.sample_size(10);
        for (round, name) in ROUNDS.iter().enumerate().skip(1) {
            g.bench_function(BenchmarkId::new("responder", name), |bench| {
                let r = get();
                bench.iter_batched(
                    || r.target_before(round),
                    |(mut s, mut rng)| {
                        let response =
                            s.handle(r.target_requests[round - 1].clone(), &mut rng, r.now);
                        assert!(!matches!(response, AggResponse::Abort(_)));
                        response
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        for (round, name) in ROUNDS.iter().enumerate() {
            g.bench_function(BenchmarkId::new("asker", name), |bench| {
                let r = get();
                bench.iter_batched(
                    || r.asker_before(round),
                    |mut agg| {
                        for (from, bytes) in &r.replies[round] {
                            agg.handle_response(*from, bytes, r.now);
                        }
                        agg
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        g.finish();
        if let Some(r) = recording.get() {
            eprintln!(
                "aggregation rounds/{n}/{graph}: degree {} (sparse degree for n: {:?})",
                r.degree,
                sparse_degree(n)
            );
        }
    }
}

/// Every party of an aggregation in this process: total CPU for n members and the asker.
fn whole_aggregation(c: &mut Criterion) {
    let mut g = c.benchmark_group("whole aggregation (all parties)");
    g.sample_size(10);
    for n in [10usize, 100, 300] {
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, &n| {
            bench.iter(|| record(n, DENSE_MAX))
        });
    }
    g.finish();
}

criterion_group!(benches, primitives, rounds, whole_aggregation);
criterion_main!(benches);
