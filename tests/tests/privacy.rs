//! What a dishonest asker learns about a real node's `count` answer over real QUIC
//! (spec §9.6.2, §11.13): the asker surrounds the victim with Sybils it runs itself (fresh
//! keys, software that adds no noise) and guesses the victim's `owners` bit from the raw
//! sum. Its accuracy over many asks must stay within the ε-DP bound `e^ε/(1 + e^ε)` plus
//! four standard errors. v1 let the same attack read the bit in 62 % (5 members) to
//! 100 % (1000) of asks.

use std::time::Duration;

use kith_node::NodeOptions;
use kith_protocol::aggregation::asker::AggregationParams;
use kith_protocol::aggregation::cohort::DENSE_MAX;
use kith_protocol::{ItemKey, QueryId};
use kith_tests::raw_asker::ask_with_sybils;
use rand_core::{OsRng, RngCore};

const ITEM: &str = "tag:vehicle/subaru";

/// The bound plus four standard errors: the victim node draws its noise from the operating
/// system, so these runs are not seeded, and four keep a false alarm below 1 in 30 000
/// (a node sizing its noise as v1 did is still read in about 0.90 of asks, far above).
fn allowed(epsilon: f64, trials: usize) -> f64 {
    let p = epsilon.exp() / (1.0 + epsilon.exp());
    p + 4.0 * (p * (1.0 - p) / trials as f64).sqrt()
}

/// A member's own settings for these runs: ε 1 (the default the federation turned off),
/// and budgets wide enough for the trials (the budget is tested on its own).
async fn wide_budgets(node: &kith_tests::TestNode) {
    for (k, v) in [
        ("epsilon", "1"),
        ("asks-per-day", "100000"),
        ("epsilon-per-day", "1000"),
    ] {
        node.client.set_setting(k, v).await.unwrap();
    }
}

/// The asker's lowest parameters: minimum cohort 2, no ε of its own.
fn lowest_params() -> AggregationParams {
    AggregationParams {
        epsilon: None,
        min_cohort: 2,
        round_timeout: Duration::from_secs(5),
        dense_max: DENSE_MAX,
        detail: false,
    }
}

async fn sybil_attack(sybils: usize, trials: usize) -> f64 {
    let (ana, friends) = kith_tests::federation(1, NodeOptions::default()).await;
    let victim = &friends[0];
    wide_budgets(victim).await;
    let item = ItemKey::parse(ITEM).unwrap();
    let params = lowest_params();
    let mut right = 0;
    for trial in 0..trials {
        let owns = OsRng.next_u32() % 2 == 1;
        if owns {
            victim.endorse(ITEM, 1, None, None).await;
        } else {
            victim.client.unendorse(item.clone()).await.unwrap();
        }
        let mut qid = [0u8; 16];
        OsRng.fill_bytes(&mut qid);
        let out = ask_with_sybils(
            &ana.identity(),
            &[victim],
            sybils,
            &item,
            QueryId(qid),
            params,
        )
        .await;
        assert_eq!(out.epsilon, Some(1000), "the victim's ε holds the session");
        let guess = match out.raw {
            Some(raw) => raw[0] >= 1,
            None => trial % 2 == 0,
        };
        right += (guess == owns) as usize;
    }
    right as f64 / trials as f64
}

/// The victim among `sybils` Sybils over `trials` asks: within ε (four standard errors).
async fn sybil_cohort(sybils: usize, trials: usize) {
    let acc = sybil_attack(sybils, trials).await;
    let limit = allowed(1.0, trials);
    eprintln!(
        "real node among {sybils} Sybils: accuracy {acc:.3} over {trials} (allowed {limit:.3})"
    );
    assert!(acc <= limit, "the asker guessed {acc:.3} > {limit:.3}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sybil_cohort_of_five_learns_no_more_than_epsilon() {
    sybil_cohort(4, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sybil_cohort_of_fifty_learns_no_more_than_epsilon() {
    sybil_cohort(49, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "400 asks of a real node among 49 Sybils; run in release with --include-ignored"]
async fn a_sybil_cohort_of_fifty_learns_no_more_than_epsilon_full() {
    sybil_cohort(49, 400).await;
}

/// Include/exclude differencing across the daily budget (spec §11.14): in each trial the
/// asker alternates asks with the victim and without it — the second tell it the rest of
/// the cohort, here a real friend whose answer it does not know — and averages the
/// differences. The victim's `epsilon-per-day` of 4 at ε = 1 admits exactly four asks
/// that include it per trial (each trial raises the budget by 4 over the last, as a new
/// day would); the others are declined as over budget. The attacker's accuracy must then
/// stay within the bound of 4ε, `e^4/(1 + e^4)` = 0.982, and exactly four of the six asks
/// that try to include the victim may count it.
async fn differencing(trials: usize) -> f64 {
    // A budget can be raised to 1000 at most, and the friend takes part in twelve asks a
    // trial: 80 trials per federation.
    let mut right = 0;
    let mut left = trials;
    while left > 0 {
        let chunk = left.min(80);
        right += differencing_on_fresh_nodes(chunk).await;
        left -= chunk;
    }
    right as f64 / trials as f64
}

async fn differencing_on_fresh_nodes(trials: usize) -> usize {
    const INCLUDES: usize = 6;
    let (ana, friends) = kith_tests::federation(2, NodeOptions::default()).await;
    let (victim, friend) = (&friends[0], &friends[1]);
    // The victim's `epsilon-per-day` is set for each trial below.
    wide_budgets(victim).await;
    wide_budgets(friend).await;
    // The friend owns the item; the attacker does not know it.
    friend.endorse(ITEM, 1, None, None).await;
    let item = ItemKey::parse(ITEM).unwrap();
    let params = lowest_params();
    let mut right = 0;
    for trial in 0..trials {
        let budget = 4 * (trial + 1);
        victim
            .client
            .set_setting("epsilon-per-day", &budget.to_string())
            .await
            .unwrap();
        let owns = OsRng.next_u32() % 2 == 1;
        if owns {
            victim.endorse(ITEM, 1, None, None).await;
        } else {
            victim.client.unendorse(item.clone()).await.unwrap();
        }
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for i in 0..2 * INCLUDES {
            let members: Vec<&kith_tests::TestNode> = if i % 2 == 0 {
                vec![victim, friend]
            } else {
                vec![friend]
            };
            let mut qid = [0u8; 16];
            OsRng.fill_bytes(&mut qid);
            let out =
                ask_with_sybils(&ana.identity(), &members, 3, &item, QueryId(qid), params).await;
            let raw = out.raw.expect("the friend and the Sybils always release")[0];
            let counted = out.failures.iter().all(|f| f.0 != victim.id()) && i % 2 == 0;
            if counted {
                with.push(raw as f64);
            } else {
                without.push(raw as f64);
            }
        }
        assert_eq!(with.len(), 4, "the daily budget admits exactly four asks");
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let guess = mean(&with) - mean(&without) >= 0.5;
        right += (guess == owns) as usize;
    }
    right
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_exclude_differencing_is_capped_by_the_daily_budget() {
    let trials = 100;
    let acc = differencing(trials).await;
    let limit = allowed(4.0, trials).min(1.0);
    eprintln!(
        "differencing over a day's budget: accuracy {acc:.3} over {trials} (allowed {limit:.3})"
    );
    assert!(acc <= limit, "the asker guessed {acc:.3} > {limit:.3}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "400 trials of twelve asks on real nodes; run in release with --include-ignored"]
async fn include_exclude_differencing_is_capped_by_the_daily_budget_full() {
    let trials = 400;
    let acc = differencing(trials).await;
    let limit = allowed(4.0, trials);
    eprintln!(
        "differencing over a day's budget: accuracy {acc:.3} over {trials} (allowed {limit:.3})"
    );
    assert!(acc <= limit, "the asker guessed {acc:.3} > {limit:.3}");
}
