//! Load (issue: proof under load): one node serving 200 concurrent askers, first alone,
//! then while one of its contacts floods it with aggregation and plain asks over as many
//! connections and streams as it may open. The budget holds (the flooder gets at most
//! `asks-per-day` answers and 4 open sessions, and one audit entry), every other asker is
//! served with the exact aggregate, and memory stays bounded.
//!
//! Run (with the figures): `cargo test -p kith-tests --test load -- --nocapture`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_client::transport;
use kith_protocol::aggregation::estimate::AggregateSum;
use kith_protocol::aggregation::messages::{AbortReason, AggRequest, AggResponse};
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    Identity, ItemKey, NodeId, PeerRequest, PeerResponse, Query, QueryId, Refusal, Share,
};
use kith_tests::memory::{peak_rss_mb, rss_mb};
use kith_tests::{link, raw_peer, TestNode};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const ASKERS: usize = 200;
/// Connections the flooder opens (the node keeps the newest 8 per key).
const FLOOD_CONNECTIONS: usize = 12;
/// Requests each flooding connection keeps in flight.
const FLOOD_STREAMS: usize = 32;
const ITEM: &str = "tag:vehicle/subaru/outback";
/// How long the flood goes on alone after the askers' burst.
const FLOOD_ALONE: Duration = Duration::from_secs(5);
/// Default `asks-per-day`.
const BUDGET: u64 = 20;

fn item() -> ItemKey {
    ItemKey::parse(ITEM).unwrap()
}

fn mb(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0} MiB"))
}

/// The target T, two more nodes so that every ask has a cohort of three, the askers, and
/// the flooder. T names its Outback (2 units, 5 stars); H0 owns one, count only.
struct Fleet {
    target: TestNode,
    _helpers: Vec<TestNode>,
    askers: Vec<Arc<TestNode>>,
    flooder: TestNode,
}

async fn start(name: String) -> TestNode {
    let n = TestNode::start(&name).await;
    n.client.set_setting("epsilon", "off").await.unwrap();
    n.client.set_setting("min-cohort", "3").await.unwrap();
    n
}

async fn fleet() -> Fleet {
    let target = start("T".into()).await;
    target.endorse(ITEM, 2, Some(5), None).await;
    target
        .share_with_friends("tag:vehicle/*", Share::Name)
        .await;
    let mut helpers = Vec::new();
    for i in 0..2 {
        helpers.push(start(format!("H{i}")).await);
    }
    helpers[0].endorse(ITEM, 1, None, None).await;
    let flooder = start("Flood".into()).await;
    link(&target, &flooder).await;

    let slots = Arc::new(Semaphore::new(8));
    let mut set = JoinSet::new();
    for i in 0..ASKERS {
        let slots = slots.clone();
        set.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            (i, start(format!("A{i}")).await)
        });
    }
    let mut askers = Vec::new();
    while let Some(done) = set.join_next().await {
        askers.push(done.unwrap());
    }
    askers.sort_by_key(|(i, _)| *i);
    let askers: Vec<Arc<TestNode>> = askers.into_iter().map(|(_, a)| Arc::new(a)).collect();
    for a in &askers {
        link(&target, a).await;
        for h in &helpers {
            link(h, a).await;
        }
    }
    Fleet {
        target,
        _helpers: helpers,
        askers,
        flooder,
    }
}

/// Every asker asks at once; each answer must name T and carry the exact aggregate.
/// Returns the latencies, sorted.
async fn burst(askers: &[Arc<TestNode>]) -> Vec<Duration> {
    let mut set = JoinSet::new();
    for a in askers {
        let a = a.clone();
        set.spawn(async move {
            let started = Instant::now();
            let r = a
                .client
                .ask(
                    kith_client::Query::new(item())
                        .timeout(Duration::from_secs(30))
                        .detail(),
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", a.name));
            (a.name.clone(), started.elapsed(), r)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = set.join_next().await {
        let (name, took, r) = done.unwrap();
        assert_eq!((r.answered, r.named.len()), (3, 1), "{name}: {r:?}");
        assert_eq!(
            r.aggregate,
            Some(AggregateSum {
                owners: 2,
                owners_low: 2,
                owners_high: 2,
                units: Some(3),
                ratings: Some([0, 0, 0, 0, 1])
            }),
            "{name}: {r:?}"
        );
        latencies.push(took);
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// What the flooder got back.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    sessions: AtomicU64,
    answers: AtomicU64,
    rate_limited: AtomicU64,
    other: AtomicU64,
    failed: AtomicU64,
}

/// Flood `target` as `flooder` until `stop`: alternating fresh `Advertise`s and plain
/// `Ask`s, [`FLOOD_STREAMS`] in flight on each connection the node keeps. Returns how
/// many of them the node closed.
async fn flood(
    target: &TestNode,
    flooder: &Identity,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> (usize, Vec<quinn::Endpoint>, JoinSet<()>) {
    let mut endpoints = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..FLOOD_CONNECTIONS {
        let (endpoint, conn) = raw_peer(target, flooder).await;
        endpoints.push(endpoint);
        conns.push(conn);
    }
    // Wait (bounded) until the node has closed what it will not keep.
    let closed =
        |conns: &[quinn::Connection]| conns.iter().filter(|c| c.close_reason().is_some()).count();
    for _ in 0..100 {
        if closed(&conns) >= FLOOD_CONNECTIONS - 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = closed(&conns);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for conn in conns.into_iter().filter(|c| c.close_reason().is_none()) {
        for _ in 0..FLOOD_STREAMS {
            let (conn, stop, tally, counter) =
                (conn.clone(), stop.clone(), tally.clone(), counter.clone());
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let mut query_id = [0u8; 16];
                    query_id[..8].copy_from_slice(&i.to_be_bytes());
                    let query_id = QueryId(query_id);
                    let request = if i % 2 == 0 {
                        PeerRequest::Aggregate(AggRequest::Advertise {
                            query_id,
                            item: item(),
                            epsilon: None,
                            detail: false,
                        })
                    } else {
                        PeerRequest::Ask(Query {
                            query_id,
                            item: item(),
                        })
                    };
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    let reply = transport::exchange(
                        &conn,
                        &encode_message(&request),
                        MAX_PEER_FRAME,
                        MAX_PEER_FRAME,
                    )
                    .await;
                    let counter = match reply.map(|b| decode_message::<PeerResponse>(&b)) {
                        Ok(Ok(PeerResponse::Aggregate(AggResponse::Advertised { .. }))) => {
                            &tally.sessions
                        }
                        Ok(Ok(PeerResponse::Answer(_))) => &tally.answers,
                        Ok(Ok(PeerResponse::Aggregate(AggResponse::Abort(
                            AbortReason::RateLimited,
                        ))))
                        | Ok(Ok(PeerResponse::Refused(Refusal::RateLimited))) => {
                            &tally.rate_limited
                        }
                        Ok(_) => &tally.other,
                        Err(_) => {
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
    (refused, endpoints, tasks)
}

fn audit_count(entries: &[kith_protocol::app::AuditEntry], event: &str, peer: &NodeId) -> usize {
    entries
        .iter()
        .filter(|e| e.event == event && e.peer.as_ref() == Some(peer))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_serves_200_askers_while_a_contact_floods_it() {
    let setup = Instant::now();
    let fleet = fleet().await;
    let rss_setup = rss_mb();
    println!(
        "set-up: {} askers, {} nodes, in {:.1} s; RSS {}",
        ASKERS,
        ASKERS + 4,
        setup.elapsed().as_secs_f64(),
        mb(rss_setup)
    );

    let calm = burst(&fleet.askers).await;
    let rss_calm = rss_mb();
    println!(
        "{ASKERS} concurrent asks, no flood: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; RSS {}",
        percentile(&calm, 0.5),
        percentile(&calm, 0.95),
        percentile(&calm, 1.0),
        mb(rss_calm)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let flood_started = Instant::now();
    let (refused, _endpoints, mut tasks) = flood(
        &fleet.target,
        &fleet.flooder.identity(),
        stop.clone(),
        tally.clone(),
    )
    .await;
    // Let the flood reach full speed before the askers come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Sample the target's open sessions while the askers come.
    let burst_done = AtomicBool::new(false);
    let sample = async {
        let mut peak = 0;
        while !burst_done.load(Ordering::Relaxed) {
            peak = peak.max(fleet.target.node().open_aggregations());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peak
    };
    let run = async {
        let latencies = burst(&fleet.askers).await;
        burst_done.store(true, Ordering::Relaxed);
        latencies
    };
    let (stormy, peak_open) = tokio::join!(run, sample);
    let rss_burst = rss_mb();
    // The flood goes on alone: memory must not grow with the number of requests.
    let sent_alone = tally.sent.load(Ordering::Relaxed);
    tokio::time::sleep(FLOOD_ALONE).await;
    let sent_alone = tally.sent.load(Ordering::Relaxed) - sent_alone;
    stop.store(true, Ordering::Relaxed);
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    assert!(drained.is_ok(), "flood tasks stop");
    let rss_flood = rss_mb();

    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "{ASKERS} concurrent asks under flood: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; RSS {}",
        percentile(&stormy, 0.5),
        percentile(&stormy, 0.95),
        percentile(&stormy, 1.0),
        mb(rss_burst)
    );
    println!(
        "flood: {} requests in {:.1} s ({:.0}/s) on {} connections ({} closed by the node): \
         {} sessions admitted, {} plain answers, {} rate-limited, {} other, {} failed",
        t(&tally.sent),
        flood_secs,
        t(&tally.sent) as f64 / flood_secs,
        FLOOD_CONNECTIONS - refused,
        refused,
        t(&tally.sessions),
        t(&tally.answers),
        t(&tally.rate_limited),
        t(&tally.other),
        t(&tally.failed),
    );
    println!(
        "target: at most {peak_open} aggregation sessions open; RSS {} after {sent_alone} \
         more flood requests alone, process peak {}",
        mb(rss_flood),
        mb(peak_rss_mb())
    );

    // The budget held: at most asks-per-day answers in all, at most 4 sessions at once.
    // Each connection past 8 closed the oldest (the flooder's own node's among them).
    assert_eq!(refused, FLOOD_CONNECTIONS - 8, "8 connections per key");
    assert!(t(&tally.sessions) <= 4, "{}", t(&tally.sessions));
    assert!(t(&tally.sessions) + t(&tally.answers) <= BUDGET);
    assert!(
        t(&tally.rate_limited) > 10 * BUDGET,
        "the flood was a flood"
    );
    assert_eq!(t(&tally.other), 0);
    let audit = fleet.target.client.audit(1000).await.unwrap();
    let flooder = fleet.flooder.id();
    assert_eq!(
        audit_count(&audit, "answered", &flooder) as u64,
        t(&tally.sessions) + t(&tally.answers)
    );
    assert_eq!(
        audit_count(&audit, "rate-limited", &flooder),
        1,
        "coalesced"
    );
    // Memory: sessions are bounded by the askers and the flooder's four (plus, for at most
    // a second, the finished and already wiped sessions of the first burst awaiting their
    // sweep); memory did not grow with the flood once the burst was over.
    assert!(peak_open <= 2 * ASKERS + 4, "{peak_open}");
    assert!(
        sent_alone > 1000,
        "the flood went on alone: {sent_alone} requests"
    );
    if let (Some(burst), Some(end)) = (rss_burst, rss_flood) {
        assert!(
            end < burst + 32.0,
            "RSS {burst:.0} -> {end:.0} MiB over {sent_alone} flood requests alone"
        );
    }
    // Everyone else was served (checked in `burst`), and the node still is.
    burst(&fleet.askers[..10]).await;
}
