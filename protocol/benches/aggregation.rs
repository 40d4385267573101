//! Costs of secure aggregation (spec §9): the primitives each round is made of, one
//! responder's rounds 1 and 2, and a whole aggregation with every party in one process.
//!
//! `cargo bench -p kith-protocol --bench aggregation`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use kith_protocol::aggregation::asker::{AggAsker, AggregationParams};
use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::keys::Context;
use kith_protocol::aggregation::messages::{AggRequest, AggResponse, SignedAdvertisement};
use kith_protocol::aggregation::responder::{threshold_for, AggResponder, ResponderSettings};
use kith_protocol::aggregation::{prg, shamir};
use kith_protocol::message::Answer;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::*;
use rand_core::OsRng;

const SETTINGS: ResponderSettings = ResponderSettings {
    epsilon: Some(1000),
    min_cohort: 2,
};

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
    for n in [10u32, 100, 250] {
        let t = threshold_for(n, 2) as usize;
        let xs: Vec<u32> = (1..=n).collect();
        g.bench_with_input(BenchmarkId::new("split", n), &n, |bench, _| {
            bench.iter(|| shamir::split(&shamir::random_scalar(&mut OsRng), t, &xs, &mut OsRng))
        });
        g.bench_with_input(BenchmarkId::new("lagrange", n), &n, |bench, _| {
            bench.iter(|| shamir::lagrange_at_zero(&xs[..t]))
        });
    }
    g.finish();
}

struct Cohort {
    ctx: Context,
    ids: Vec<Identity>,
    adverts: Vec<SignedAdvertisement>,
}

/// n members' round-0 advertisements, sorted by node id.
fn cohort(n: usize) -> Cohort {
    let ctx = Context {
        query_id: QueryId([1; 16]),
        asker: NodeId([9; 32]),
    };
    let mut ids: Vec<Identity> = (0..n).map(|_| Identity::generate(&mut OsRng)).collect();
    ids.sort_by_key(|i| i.node_id());
    let deadline = Instant::now() + Duration::from_secs(3600);
    let c = Contribution {
        owns: true,
        units: 1,
        best_rating: Some(4),
    };
    let adverts = ids
        .iter()
        .map(|id| {
            AggResponder::start(id, ctx, c, SETTINGS, None, &mut OsRng, deadline)
                .advertisement()
                .clone()
        })
        .collect();
    Cohort { ctx, ids, adverts }
}

fn responder_rounds(c: &mut Criterion) {
    let mut g = c.benchmark_group("responder");
    g.sample_size(10);
    for n in [10usize, 100, 250] {
        let co = cohort(n);
        let t = threshold_for(n as u32, 2);
        // A fresh session for the first member each iteration, with its advertisement in
        // the cohort list; the cost measured is round 1 only.
        g.bench_with_input(BenchmarkId::new("round 1 share keys", n), &n, |bench, _| {
            bench.iter_batched(
                || {
                    let c = Contribution::default();
                    let s = AggResponder::start(
                        &co.ids[0],
                        co.ctx,
                        c,
                        SETTINGS,
                        None,
                        &mut OsRng,
                        Instant::now() + Duration::from_secs(60),
                    );
                    let mut ads = co.adverts.clone();
                    ads[0] = s.advertisement().clone();
                    (s, ads)
                },
                |(mut s, ads)| {
                    s.handle(
                        &co.ids[0],
                        AggRequest::ShareKeys {
                            query_id: co.ctx.query_id,
                            cohort: ads,
                            threshold: t,
                        },
                        &mut OsRng,
                        Instant::now(),
                    )
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// Every party of an aggregation in this process: total CPU for n members and the asker.
fn whole_aggregation(c: &mut Criterion) {
    let mut g = c.benchmark_group("whole aggregation (all parties)");
    g.sample_size(10);
    for n in [10usize, 50, 100] {
        let ids: Vec<Identity> = (0..n).map(|_| Identity::generate(&mut OsRng)).collect();
        let asker = Identity::generate(&mut OsRng);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                let now = Instant::now();
                let params = AggregationParams {
                    epsilon: Some(1000),
                    min_cohort: 2,
                    round_timeout: Duration::from_secs(60),
                };
                let qid = QueryId([3; 16]);
                let item = ItemKey::parse("tag:x").unwrap();
                let mut agg = AggAsker::new(
                    asker.node_id(),
                    qid,
                    item,
                    ids.iter().map(|i| i.node_id()),
                    params,
                    now,
                );
                let by_id: BTreeMap<NodeId, &Identity> =
                    ids.iter().map(|i| (i.node_id(), i)).collect();
                let mut sessions: BTreeMap<NodeId, AggResponder> = BTreeMap::new();
                while !agg.is_done() {
                    let mut batch = Vec::new();
                    while let Some(t) = agg.poll_transmit() {
                        batch.push(t);
                    }
                    for t in batch {
                        let id = by_id[&t.to];
                        let Ok(PeerRequest::Aggregate(req)) =
                            decode_message::<PeerRequest>(&t.payload)
                        else {
                            unreachable!()
                        };
                        let resp = match req {
                            AggRequest::Advertise {
                                query_id, epsilon, ..
                            } => {
                                let ctx = Context {
                                    query_id,
                                    asker: asker.node_id(),
                                };
                                let s = AggResponder::start(
                                    id,
                                    ctx,
                                    Contribution::default(),
                                    SETTINGS,
                                    epsilon,
                                    &mut OsRng,
                                    now + Duration::from_secs(60),
                                );
                                let ad = s.advertisement().clone();
                                sessions.insert(t.to, s);
                                AggResponse::Advertised {
                                    answer: Answer {
                                        query_id,
                                        named: vec![],
                                    },
                                    advertisement: ad,
                                }
                            }
                            other => sessions
                                .get_mut(&t.to)
                                .unwrap()
                                .handle(id, other, &mut OsRng, now),
                        };
                        agg.handle_response(
                            t.to,
                            &encode_message(&PeerResponse::Aggregate(resp)),
                            now,
                        );
                    }
                }
                assert!(agg.outcome().aggregate.is_ok());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, primitives, responder_rounds, whole_aggregation);
criterion_main!(benches);
