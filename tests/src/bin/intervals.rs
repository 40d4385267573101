//! What an honest asker gets: the width and coverage of the released `owners` interval
//! (spec §9.6.4) over simulated asks, for cohort sizes and how much of the cohort each
//! member knows. Figures for PERFORMANCE.md.
//!
//! Each ask runs the members' real noise rules ([`sizing`], [`NoiseDraw`]) and the asker's
//! real release ([`AggregateSum::release`]) over the reference graph and parameters; what
//! it skips is the masking and the messages, which cancel exactly (the protocol
//! simulations check that). ε = 1, minimum cohort 5; every member survives unless
//! `--drop P` makes P % of them, at random in each ask, drop out after round 1.
//!
//! ```text
//! cargo run --release -p kith-tests --bin intervals -- [--asks 1000] [--structures 10] [--cohorts 5,11,30,100,1000] [--drop 0]
//! ```

use kith_protocol::aggregation::cohort::{Graph, Params, MAX_COHORT};
use kith_protocol::aggregation::estimate::{AggregateSum, NoiseLeft};
use kith_protocol::aggregation::input::VECTOR_LEN;
use kith_protocol::aggregation::messages::NoiseDeclaration;
use kith_protocol::aggregation::noise::{NoiseDraw, WHOLE_MASS};
use kith_protocol::aggregation::sizing::{holder_union, may_count, NoiseView};
use kith_protocol::testing::SimRng;
use rand_core::RngCore;

const EPSILON: f64 = 1.0;
const MIN_COHORT: u32 = 5;

/// One member as round 1 left it: what it can check, its own threshold, its holders, and
/// the contacts whose noise it may count if they survive (spec §9.6.2).
struct Member {
    view: NoiseView,
    holders: Vec<u32>,
    countable: Vec<(u32, NoiseDeclaration)>,
}

/// One cohort's structure: who knows whom and the graph.
struct Structure {
    members: Vec<Member>,
}

fn structure(rng: &mut SimRng, n: usize, knows: f64) -> Structure {
    let params = Params::choose(n, MIN_COHORT.min(n as u32), Some(1000));
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let graph = Graph::new(&seed, n, params.degree as usize).expect("reference degree");
    let threshold = (u32::MAX as f64 * knows) as u64;
    let mut acquainted = vec![vec![false; n]; n];
    let pairs = (0..n).flat_map(|a| (a + 1..n).map(move |b| (a, b)));
    for (a, b) in pairs {
        let yes = (rng.next_u32() as u64) < threshold;
        acquainted[a][b] = yes;
        acquainted[b][a] = yes;
    }
    let views: Vec<NoiseView> = (0..n)
        .map(|p| NoiseView {
            holders: graph.degree() + 1,
            session_threshold: params.threshold,
            complete: graph.is_complete(),
            vouched: graph
                .neighbours(p as u32)
                .iter()
                .filter(|q| acquainted[p][**q as usize])
                .count(),
            min_cohort: MIN_COHORT,
        })
        .collect();
    let members = (0..n)
        .map(|p| {
            let view = views[p];
            let countable = graph
                .neighbours(p as u32)
                .into_iter()
                .filter(|q| acquainted[p][*q as usize])
                .map(|q| (q, views[q as usize].declaration(true)))
                .filter(|(q, d)| may_count(&view, d, holder_union(&graph, p as u32, *q)))
                .collect();
            let mut holders = graph.neighbours(p as u32);
            holders.push(p as u32);
            Member {
                view,
                holders,
                countable,
            }
        })
        .collect();
    Structure { members }
}

#[derive(Default)]
struct Tally {
    asks: u32,
    withheld: u32,
    covered: u32,
    width: u64,
    widest: u32,
    mass: f64,
    negative_or_over: u32,
}

/// One ask in which `drop` members, chosen at random, drop out after round 1: they shared
/// their secrets but sent no masked input, so they are not in the sum and nobody counts
/// them. The asker withholds the aggregate if any member of U2 — a survivor, whose self-mask
/// seed it rebuilds, or one of the dropped, whose mask-key seed it rebuilds — has fewer than
/// its own threshold of holders left (spec §9.8.4, §9.8.5).
fn ask(rng: &mut SimRng, s: &Structure, drop: usize, tally: &mut Tally) {
    let n = s.members.len();
    let mut dropped = vec![false; n];
    for p in rand_subset(rng, n, drop) {
        dropped[p] = true;
    }
    let survivors = n - drop;
    tally.asks += 1;
    let short = s.members.iter().any(|m| {
        let alive = m.holders.iter().filter(|h| !dropped[**h as usize]).count();
        alive < m.view.threshold() as usize
    });
    if short {
        tally.withheld += 1;
        return;
    }
    let mut truth = 0u32;
    let mut cells = [0u32; VECTOR_LEN];
    let mut mass = 0.0;
    for (p, m) in s.members.iter().enumerate() {
        let owns = rng.next_u32() % 10 < 3;
        let draw = NoiseDraw::draw(rng, EPSILON, false, m.view.base_divisor());
        if dropped[p] {
            continue;
        }
        let counted: Vec<NoiseDeclaration> = m
            .countable
            .iter()
            .filter(|(q, _)| !dropped[*q as usize])
            .map(|(_, d)| *d)
            .collect();
        let (kept, removed) = draw.release(m.view.keep(&counted));
        truth += owns as u32;
        mass += kept as f64 / WHOLE_MASS as f64;
        let total = draw.total();
        cells[0] = cells[0]
            .wrapping_add(owns as u32)
            .wrapping_add(total[0].wrapping_sub(removed[0]));
    }
    let noise = Some(NoiseLeft {
        epsilon: EPSILON,
        detail: false,
        mass,
    });
    let a = AggregateSum::release(&cells, survivors as u32, false, noise);
    tally.covered += (a.owners_low..=a.owners_high).contains(&truth) as u32;
    let width = a.owners_high - a.owners_low;
    tally.width += width as u64;
    tally.widest = tally.widest.max(width);
    tally.mass += mass;
    tally.negative_or_over +=
        (a.owners > survivors as u32 || a.owners_high > survivors as u32) as u32;
}

/// `k` distinct members of `0..n`, uniformly: a partial Fisher–Yates shuffle.
fn rand_subset(rng: &mut SimRng, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(k);
    all
}

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// `--cohorts 5,11,30`: the cohort sizes, each from 2 to the largest cohort.
fn cohorts() -> Vec<usize> {
    let Some(list) = std::env::args().skip_while(|a| a != "--cohorts").nth(1) else {
        return vec![5, 11, 30, 100, 1000];
    };
    list.split(',')
        .map(|v| match v.trim().parse() {
            Ok(n) if (2..=MAX_COHORT).contains(&n) => n,
            _ => panic!("--cohorts takes sizes from 2 to {MAX_COHORT}, comma-separated: {v:?}"),
        })
        .collect()
}

fn main() {
    let asks = arg("--asks", 1000);
    let structures = arg("--structures", 10).max(1);
    let drop_percent = arg("--drop", 0);
    assert!(drop_percent < 100, "--drop takes a percentage below 100");
    println!(
        "ε = {EPSILON}, minimum cohort {MIN_COHORT}, {asks} asks per row over {structures} random acquaintance graphs, {drop_percent} % of members dropping out after round 1"
    );
    println!(
        "| cohort | members know | graph degree | noise mass R (mean) | 90 % interval half-width (mean / widest) | coverage | dropped | withheld |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut rng = SimRng(2026);
    for n in cohorts() {
        // At least one member whenever dropouts are asked for.
        let drop = match drop_percent as usize {
            0 => 0,
            p => ((n * p + 50) / 100).max(1),
        };
        for knows in [1.0, 0.3, 0.1] {
            let mut tally = Tally::default();
            for k in 0..structures {
                let s = structure(&mut rng, n, knows);
                let share = asks / structures + u32::from(k < asks % structures);
                for _ in 0..share {
                    ask(&mut rng, &s, drop, &mut tally);
                }
            }
            let degree = Params::choose(n, MIN_COHORT.min(n as u32), None).degree;
            assert_eq!(tally.negative_or_over, 0, "clamped");
            let released = (tally.asks - tally.withheld).max(1) as f64;
            println!(
                "| {n} | {:.0} % | {degree} | {:.2} | ±{:.1} / ±{:.1} | {:.1} % | {drop} | {} |",
                knows * 100.0,
                tally.mass / released,
                tally.width as f64 / released / 2.0,
                tally.widest as f64 / 2.0,
                100.0 * tally.covered as f64 / released,
                tally.withheld,
            );
        }
    }
}
