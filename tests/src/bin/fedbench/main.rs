//! `fedbench`: kith's federation benchmark. For each size, one asker and N responders —
//! real nodes, real QUIC on 127.0.0.1, real SQLite stores, linked by invites — in one
//! process. It times the private ask against a direct plain-text baseline on the same
//! nodes and connections, and measures CPU per side, the responders' crypto floor, bytes
//! per responder and peak memory, checking every aggregate against the seeded truth.
//!
//! ```text
//! cargo run --release -p kith-tests --bin fedbench -- --nodes 10,100,1000 [--queries Q] [--drop P] [--json FILE]
//! ```

mod cpu;
mod direct;
mod federation;
mod floor;
mod progress;
mod report;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use kith_protocol::aggregation::cohort::MAX_COHORT;
use kith_protocol::ItemKey;
use rand_core::{OsRng, RngCore};

use cpu::{metered_runtime, CpuMeter};
use federation::{Federation, ITEM};
use floor::{PerResponder, UnitCosts};
use progress::Progress;
use report::{percentile, Report, Run};

#[derive(Parser, Debug)]
#[command(about = "kith federation benchmark: private ask vs direct baseline on real nodes")]
struct Args {
    /// Federation sizes (responders per asker), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    nodes: Vec<usize>,
    /// Measured asks of each kind per size (after one warm-up of each).
    #[arg(long, default_value_t = 5)]
    queries: usize,
    /// Fraction of responders that drop out after round 1 of each private ask.
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// The longest ask the app API allows.
const ASK_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> Result<()> {
    let args = Args::parse();
    if args.nodes.is_empty() || args.nodes.iter().any(|n| !(5..=MAX_COHORT).contains(n)) {
        bail!("--nodes: each size must be from 5 to {MAX_COHORT}");
    }
    if !(0.0..=0.3).contains(&args.drop) {
        bail!("--drop must be from 0 to 0.3 (more and the cohort falls below its threshold)");
    }
    if args.queries == 0 {
        bail!("--queries must be at least 1");
    }
    if !cpu::available() {
        bail!("fedbench reads per-thread CPU time from /proc (Linux only)");
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; measure with --release");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!("timing the crypto floor's unit costs …");
    let units = UnitCosts::measure();
    eprintln!(
        "  X25519 agreement {:.1} µs, Ed25519 verify {:.1} µs ({cores} cores)",
        units.x25519_agreement_us, units.ed25519_verify_us
    );
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut report = Report::new(cores, units, args.queries, args.drop);
    for &n in &args.nodes {
        let sides = Sides::new()?;
        let run = driver.block_on(measure(n, &args, &units, &sides))?;
        sides.shutdown();
        report.print_row(&run);
        report.runs.push(run);
    }
    report.print_summary();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if report.runs.iter().any(|r| !r.all_correct) {
        bail!("some aggregate did not match the seeded truth");
    }
    Ok(())
}

/// Bytes received since `before`, per connection. A connection replaced in between (the
/// asker raced a fresh one against one it thought dead) counts from zero.
fn bytes_since(before: &[u64], after: &[u64]) -> f64 {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.checked_sub(*b).unwrap_or(*a))
        .sum::<u64>() as f64
}

/// Choose `round(p·n)` of `n` at random.
fn choose_dropouts(n: usize, p: f64) -> Vec<bool> {
    let k = (p * n as f64).round() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = i + (OsRng.next_u64() % (n - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut dropped = vec![false; n];
    for &i in &order[..k.min(n)] {
        dropped[i] = true;
    }
    dropped
}

/// The asker's runtime and the responders', each with its CPU meter.
struct Sides {
    asker_cpu: CpuMeter,
    asker_rt: tokio::runtime::Runtime,
    responder_cpu: CpuMeter,
    responder_rt: tokio::runtime::Runtime,
}

impl Sides {
    fn new() -> Result<Self> {
        let (asker_cpu, responder_cpu) = (CpuMeter::default(), CpuMeter::default());
        Ok(Sides {
            asker_rt: metered_runtime("asker", 2, &asker_cpu)?,
            asker_cpu,
            responder_rt: metered_runtime("responders", 2, &responder_cpu)?,
            responder_cpu,
        })
    }

    fn shutdown(self) {
        self.asker_rt.shutdown_timeout(Duration::from_secs(2));
        self.responder_rt.shutdown_timeout(Duration::from_secs(2));
    }
}

async fn measure(n: usize, args: &Args, units: &UnitCosts, sides: &Sides) -> Result<Run> {
    eprintln!("\n{n} responders");
    let Sides {
        asker_cpu,
        asker_rt,
        responder_cpu,
        responder_rt,
    } = sides;
    let setup = Instant::now();
    let fed = Federation::start(n, asker_rt.handle(), responder_rt.handle()).await?;
    let setup_s = setup.elapsed().as_secs_f64();
    let item = ItemKey::parse(ITEM)?;
    let ids = std::sync::Arc::new(fed.ids());
    let named_truth = fed.responders.iter().filter(|r| r.named).count() as u32;
    let mut all_correct = true;
    let mut failures = Vec::new();

    let mut progress = Progress::new("asks (warm-up, private, direct)", 2 * args.queries + 2);
    // With detail, so that every cell can be checked against the direct baseline.
    let query = || {
        kith_client::Query::new(item.clone())
            .timeout(ASK_TIMEOUT)
            .detail()
    };
    fed.asker_client.ask(query()).await?;
    progress.inc();
    asker_rt
        .spawn(direct::ask(fed.asker.clone(), ids.clone(), item.clone()))
        .await?;
    progress.inc();

    let (cpu_a0, cpu_r0) = (asker_cpu.total_ns(), responder_cpu.total_ns());
    let (bytes0, work0) = (fed.bytes_from_responders(), fed.responder_work());
    let frames0 = fed.answered_bytes();
    let mut private_ms = Vec::new();
    let mut survivors = 0u64;
    for q in 0..args.queries {
        let dropped = choose_dropouts(n, args.drop);
        for (r, d) in fed.responders.iter().zip(&dropped) {
            r.drop.store(*d, Ordering::Relaxed);
        }
        let t = Instant::now();
        let answer = fed.asker_client.ask(query()).await?;
        private_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        for r in &fed.responders {
            r.drop.store(false, Ordering::Relaxed);
        }
        let truth = fed.truth(&dropped);
        let expected_survivors = dropped.iter().filter(|d| !**d).count() as u32;
        let got = answer.aggregate.map(|a| {
            let r = a.ratings.unwrap_or_default();
            [
                a.owners,
                a.units.unwrap_or(u32::MAX),
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
            ]
        });
        let want = truth;
        let correct = got == Some(want)
            && answer.survivors == expected_survivors
            && answer.named.len() as u32 == named_truth;
        if !correct {
            failures.push(format!(
                "private ask {q}: aggregate {got:?} (want {want:?}), survivors {} (want {expected_survivors}), named {} (want {named_truth}), withheld {:?}",
                answer.survivors, answer.named.len(), answer.withheld
            ));
        }
        all_correct &= correct;
        survivors += u64::from(answer.survivors);
        progress.inc();
    }
    let asker_cpu_ms = (asker_cpu.total_ns() - cpu_a0) as f64 / 1e6 / args.queries as f64;
    let responder_cpu_ms =
        (responder_cpu.total_ns() - cpu_r0) as f64 / 1e6 / (n * args.queries) as f64;
    let udp_bytes_per_responder =
        bytes_since(&bytes0, &fed.bytes_from_responders()) / (n * args.queries) as f64;
    let bytes_per_responder = (fed.answered_bytes() - frames0) as f64 / (n * args.queries) as f64;
    let work = PerResponder::mean(fed.responder_work() - work0, n, args.queries);

    let (cpu_a1, frames1) = (asker_cpu.total_ns(), fed.answered_bytes());
    let mut direct_ms = Vec::new();
    let truth = fed.truth(&vec![false; n]);
    for q in 0..args.queries {
        let t = Instant::now();
        let sum = asker_rt
            .spawn(direct::ask(fed.asker.clone(), ids.clone(), item.clone()))
            .await?;
        direct_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if sum != Some(truth) {
            all_correct = false;
            failures.push(format!("direct ask {q}: {sum:?} (want {truth:?})"));
        }
        progress.inc();
    }
    let direct_asker_cpu_ms = (asker_cpu.total_ns() - cpu_a1) as f64 / 1e6 / args.queries as f64;
    let direct_bytes_per_responder =
        (fed.answered_bytes() - frames1) as f64 / (n * args.queries) as f64;
    for f in &failures {
        eprintln!("  MISMATCH {f}");
    }

    let floor_ms = units.floor_ms(&work);
    let (p50, p95) = (percentile(&private_ms, 50), percentile(&private_ms, 95));
    let (d50, d95) = (percentile(&direct_ms, 50), percentile(&direct_ms, 95));
    let run = Run {
        nodes: n,
        private_p50_ms: p50,
        private_p95_ms: p95,
        direct_p50_ms: d50,
        direct_p95_ms: d95,
        ratio_p50: p50 / d50,
        asker_cpu_ms,
        responder_cpu_ms,
        responder_floor_ms: floor_ms,
        floor_ratio: responder_cpu_ms / floor_ms,
        bytes_per_responder,
        udp_bytes_per_responder,
        peak_rss_mb: kith_tests::memory::peak_rss_mb().unwrap_or(f64::NAN),
        all_correct,
        queries: args.queries,
        drop: args.drop,
        mean_survivors: survivors as f64 / args.queries as f64,
        degree: kith_protocol::aggregation::cohort::sparse_degree(n)
            .filter(|_| n > kith_protocol::aggregation::cohort::DENSE_MAX)
            .unwrap_or(n - 1),
        responder_work: work,
        direct_asker_cpu_ms,
        direct_bytes_per_responder,
        asker_cpu_us_per_n_log2_n: asker_cpu_ms * 1000.0 / (n as f64 * (n as f64).log2()),
        setup_s,
    };
    let Federation {
        asker_client,
        asker,
        responders,
        ..
    } = fed;
    asker_client.close().await;
    drop((asker, responders));
    Ok(run)
}
