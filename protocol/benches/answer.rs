//! What a named answer costs a responder (spec §8.3.2), for the timing bound of §11.4: a
//! node that owns nothing matching, one that withholds what it owns, and one that names
//! it. The shelf holds 200 endorsements; the query matches none, 1 or 32 of them.
//!
//! `cargo bench -p kith-protocol --bench answer`. The encoded sizes of the answers
//! (§11.6) are printed once before the timings.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kith_protocol::consent::{ConsentPolicy, PolicyRule, Share, Subject};
use kith_protocol::responder::answer_query;
use kith_protocol::wire::encode_message;
use kith_protocol::*;
use rand_core::OsRng;

const NOW: u64 = 1_795_000_000;

/// 200 endorsements: 32 under `tag:shelf/match/…`, the rest under `tag:shelf/other/…`.
fn shelf() -> Vec<Endorsement> {
    (0..200)
        .map(|i| {
            let group = if i < 32 { "match" } else { "other" };
            let item = ItemKey::parse(&format!("tag:shelf/{group}/item{i:03}")).unwrap();
            Endorsement::new(item, 1, Some(4), Some("A short note".into()), NOW).unwrap()
        })
        .collect()
}

fn policy(share: Share) -> ConsentPolicy {
    ConsentPolicy::new(vec![PolicyRule {
        subject: Subject::Circle("friends".into()),
        items: ItemPattern::parse("*").unwrap(),
        share,
    }])
}

fn answers(c: &mut Criterion) {
    let me = Identity::generate(&mut OsRng);
    let asker = Identity::generate(&mut OsRng).node_id();
    let shelf = shelf();
    let cases = [
        ("owns nothing matching", "tag:shelf/none", Share::Name),
        (
            "1 withheld (count)",
            "tag:shelf/match/item000",
            Share::Count,
        ),
        ("1 named", "tag:shelf/match/item000", Share::Name),
        ("32 withheld (count)", "tag:shelf/match", Share::Count),
        ("32 named", "tag:shelf/match", Share::Name),
    ];
    for (name, item, share) in &cases {
        let query = Query {
            query_id: QueryId([7; 16]),
            item: ItemKey::parse(item).unwrap(),
        };
        let (answer, _) =
            answer_query(&me, &shelf, &policy(*share), &asker, "friends", &query, NOW);
        let bytes = encode_message(&PeerResponse::Answer(answer));
        println!("answer size, {name}: {} bytes", bytes.len());
    }
    let mut g = c.benchmark_group("answer_query, 200 endorsements");
    for (name, item, share) in cases {
        let query = Query {
            query_id: QueryId([7; 16]),
            item: ItemKey::parse(item).unwrap(),
        };
        let policy = policy(share);
        g.bench_with_input(BenchmarkId::from_parameter(name), &query, |b, q| {
            b.iter(|| answer_query(&me, &shelf, &policy, &asker, "friends", q, NOW))
        });
    }
    g.finish();
}

criterion_group!(benches, answers);
criterion_main!(benches);
