//! The benchmark's results: a table for people, JSON for scripts. The JSON field names of
//! [`Run`] up to `all_correct` are a public contract; more may be added.

use serde::Serialize;

use crate::floor::{PerResponder, UnitCosts};

#[derive(Debug, Serialize)]
pub struct Run {
    pub nodes: usize,
    pub private_p50_ms: f64,
    pub private_p95_ms: f64,
    pub direct_p50_ms: f64,
    pub direct_p95_ms: f64,
    pub ratio_p50: f64,
    /// The asker node's CPU per private ask (its runtime's threads).
    pub asker_cpu_ms: f64,
    /// All responder nodes' CPU per private ask, divided by their number.
    pub responder_cpu_ms: f64,
    pub responder_floor_ms: f64,
    pub floor_ratio: f64,
    /// Bytes of kith frames each responder sent per private ask (QUIC adds its headers).
    pub bytes_per_responder: f64,
    /// UDP payload bytes the asker received from each responder per private ask, on the
    /// connections it held at the end (one replaced mid-ask counts from its start).
    pub udp_bytes_per_responder: f64,
    /// The process's high-water mark so far (asker, responders and benchmark together).
    pub peak_rss_mb: f64,
    pub all_correct: bool,
    pub queries: usize,
    pub drop: f64,
    pub mean_survivors: f64,
    /// Neighbours of each member in the SecAgg graph (n − 1 when complete).
    pub degree: usize,
    pub responder_work: PerResponder,
    pub direct_asker_cpu_ms: f64,
    pub direct_bytes_per_responder: f64,
    /// Asker CPU over n·log₂ n: flat if the asker grows no faster than that.
    pub asker_cpu_us_per_n_log2_n: f64,
    pub setup_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cores: usize,
    pub unit_costs: UnitCosts,
    pub queries: usize,
    pub drop: f64,
    pub runs: Vec<Run>,
}

/// Nearest-rank percentile of `xs`.
pub fn percentile(xs: &[f64], p: usize) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (p * v.len()).div_ceil(100).clamp(1, v.len());
    v[rank - 1]
}

const HEADER: &str = "  nodes | private p50/p95 ms | direct p50/p95 ms | ratio | asker CPU ms | resp CPU ms | floor ms | ×floor | bytes/resp | RSS MB | correct";

impl Report {
    pub fn new(cores: usize, unit_costs: UnitCosts, queries: usize, drop: f64) -> Self {
        Report {
            cores,
            unit_costs,
            queries,
            drop,
            runs: Vec::new(),
        }
    }

    pub fn print_row(&self, r: &Run) {
        println!("{HEADER}");
        println!("{}", row(r));
    }

    pub fn print_summary(&self) {
        println!(
            "\nkith fedbench: {} asks of each kind per size, dropouts {:.0} %, {} cores, every node in this process",
            self.queries,
            self.drop * 100.0,
            self.cores
        );
        println!(
            "crypto floor units: X25519 {:.1} µs, Ed25519 verify {:.1} µs\n",
            self.unit_costs.x25519_agreement_us, self.unit_costs.ed25519_verify_us
        );
        println!("{HEADER}");
        for r in &self.runs {
            println!("{}", row(r));
        }
        println!("\n  nodes | degree | per responder: agreements, verifications, signatures | asker µs/(n·log₂n) | direct bytes/resp");
        for r in &self.runs {
            println!(
                "  {:>5} | {:>6} | {:>10.1} {:>13.1} {:>11.1}                  | {:>18.2} | {:>10.0}",
                r.nodes,
                r.degree,
                r.responder_work.agreements,
                r.responder_work.verifications,
                r.responder_work.signatures,
                r.asker_cpu_us_per_n_log2_n,
                r.direct_bytes_per_responder
            );
        }
    }
}

fn row(r: &Run) -> String {
    format!(
        "  {:>5} | {:>8.1} / {:>7.1} | {:>7.1} / {:>7.1} | {:>5.1} | {:>12.1} | {:>11.2} | {:>8.2} | {:>6.2} | {:>10.0} | {:>6.0} | {}",
        r.nodes,
        r.private_p50_ms,
        r.private_p95_ms,
        r.direct_p50_ms,
        r.direct_p95_ms,
        r.ratio_p50,
        r.asker_cpu_ms,
        r.responder_cpu_ms,
        r.responder_floor_ms,
        r.floor_ratio,
        r.bytes_per_responder,
        r.peak_rss_mb,
        if r.all_correct { "yes" } else { "NO" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&xs, 50), 3.0);
        assert_eq!(percentile(&xs, 95), 5.0);
        assert_eq!(percentile(&xs, 1), 1.0);
        assert!(percentile(&[], 50).is_nan());
    }
}
