//! The asker's view of one responder's masked input does not depend on that input
//! (spec §9.1): over many aggregations, the masked `owners` cell a count-only responder
//! sends is uniform on Z/2^32 whether it owns the item or not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kith_protocol::aggregation::cohort::{Params, Plan};
use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::keys::Context;
use kith_protocol::aggregation::messages::{AggRequest, AggResponse};
use kith_protocol::aggregation::responder::{AggResponder, ResponderSettings};
use kith_protocol::{Identity, NodeId, QueryId};
use rand_core::OsRng;

const MEMBERS: usize = 5;
const BUCKETS: usize = 16;

/// One aggregation up to round 2; returns the first member's masked `owners` cell.
fn masked_owners_cell(ids: &[Identity], victim_owns: bool, round: u32) -> u32 {
    let mut q = [0u8; 16];
    q[..4].copy_from_slice(&round.to_le_bytes());
    let ctx = Context {
        query_id: QueryId(q),
        asker: NodeId([7; 32]),
    };
    let now = Instant::now();
    let mut sessions: Vec<AggResponder> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let c = Contribution {
                owns: i == 0 && victim_owns,
                units: 0,
                best_rating: None,
            };
            let settings = ResponderSettings {
                epsilon: None,
                min_cohort: 3,
            };
            AggResponder::start(
                id,
                ctx,
                c,
                settings,
                Default::default(),
                Default::default(),
                &mut OsRng,
                now + Duration::from_secs(60),
            )
        })
        .collect();
    let members = ids
        .iter()
        .zip(&sessions)
        .map(|(id, s)| (id.node_id(), s.advertisement().clone()))
        .collect();
    let plan = Plan::new(members, Params::choose(ids.len(), 3, None)).unwrap();
    let mut replies = BTreeMap::new();
    for (s, id) in sessions.iter_mut().zip(ids) {
        let p = plan.position(&id.node_id()).unwrap();
        let r = s.handle(plan.share_keys(ctx.query_id, p), &mut OsRng, now);
        let AggResponse::Shares { pairs: sh, .. } = r else {
            panic!("{r:?}")
        };
        replies.insert(id.node_id(), sh);
    }
    let mine = plan
        .relay_shares(&replies)
        .remove(&ids[0].node_id())
        .unwrap();
    let r = sessions[0].handle(
        AggRequest::MaskInput {
            query_id: ctx.query_id,
            shares: mine,
        },
        &mut OsRng,
        now,
    );
    let AggResponse::Masked(y) = r else {
        panic!("{r:?}")
    };
    y[0]
}

/// Pearson's chi-square statistic of `cells` against the uniform distribution.
fn chi_square(values: &[u32]) -> f64 {
    let mut counts = [0usize; BUCKETS];
    for v in values {
        counts[(*v >> 28) as usize] += 1;
    }
    let expected = values.len() as f64 / BUCKETS as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

#[test]
fn masked_input_is_uniform_whatever_the_input() {
    let ids: Vec<Identity> = (0..MEMBERS)
        .map(|_| Identity::generate(&mut OsRng))
        .collect();
    let runs = 400u32;
    let owns: Vec<u32> = (0..runs)
        .map(|r| masked_owners_cell(&ids, true, r))
        .collect();
    let owns_not: Vec<u32> = (0..runs)
        .map(|r| masked_owners_cell(&ids, false, runs + r))
        .collect();
    // 15 degrees of freedom: the 99.99th percentile of chi-square is about 44.3, so an
    // honest implementation fails this less than once in 10^4 runs; an unmasked or
    // partially masked cell (values 0 or 1, or a biased top nibble) fails always.
    for (label, sample) in [("owns", &owns), ("does not own", &owns_not)] {
        let x2 = chi_square(sample);
        assert!(
            x2 < 44.3,
            "{label}: chi-square {x2:.1} over {BUCKETS} buckets is not uniform"
        );
    }
    // And the two views are not trivially different: identical in distribution means
    // neither is stuck near the true value 0 or 1.
    assert!(owns.iter().filter(|v| **v <= 1).count() < 5);
    assert!(owns_not.iter().filter(|v| **v <= 1).count() < 5);
}
