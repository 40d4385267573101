//! What an asker releases from a decoded sum (spec §9.6.4): counts a person can read. Every
//! count is clamped to `[0, survivors]` (a noisy sum can leave that range, a true count
//! cannot), and `owners` carries a 90 % interval computed from the noise that stayed in the
//! sum: the mass every survivor kept, all at one α.
//!
//! The interval is the true count's: for a sum `S = x + N` with `N` the noise, `[S − q,
//! S + q]` with `q` the smallest integer such that `P(|N| ≤ q) ≥ 0.9`, then clamped. It
//! covers `x` in at least 90 % of asks, and clamping only moves bounds toward where `x` must
//! lie, so coverage is kept.

use serde::{Deserialize, Serialize};

use super::input::{UNIT_CAP, VECTOR_LEN};
use super::noise::cell_alphas;

/// The confidence of every released interval (spec §9.6.4).
pub const CONFIDENCE: f64 = 0.9;

/// The standard normal's two-sided 90 % quantile, for very wide noise (spec §9.6.4).
const NORMAL_90: f64 = 1.644_853_626_951_472_2;

/// A released aggregate (spec §9.6.4, and `AggregateSum` in §10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateSum {
    /// The estimate of how many counted members own the item, in `[0, survivors]`.
    pub owners: u32,
    /// Lower end of the 90 % interval of `owners` (inclusive).
    pub owners_low: u32,
    /// Upper end of the 90 % interval of `owners` (inclusive).
    pub owners_high: u32,
    /// Units owned, capped at [`UNIT_CAP`] per member, when the ask asked for detail.
    pub units: Option<u32>,
    /// The ratings histogram (1 to 5 stars), when the ask asked for detail.
    pub ratings: Option<[u32; 5]>,
}

/// The noise left in a sum: its per-cell α and the mass `R` the survivors kept
/// (spec §9.6.4). `R = 0` with `epsilon = None`: an exact sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseLeft {
    pub epsilon: f64,
    pub detail: bool,
    /// The kept mass, summed over the survivors.
    pub mass: f64,
}

impl AggregateSum {
    /// Release the decoded `cells` of a sum over `survivors` members (spec §9.6.4); `noise`
    /// is `None` for an exact sum.
    pub fn release(
        cells: &[u32; VECTOR_LEN],
        survivors: u32,
        detail: bool,
        noise: Option<NoiseLeft>,
    ) -> AggregateSum {
        let signed = |i: usize| cells[i] as i32 as i64;
        let clamp = |v: i64, high: u64| v.clamp(0, high as i64) as u32;
        let n = survivors as u64;
        let q = match noise {
            Some(left) => half_width(cell_alphas(left.epsilon, left.detail)[0], left.mass),
            None => 0,
        };
        let owners = signed(0);
        AggregateSum {
            owners: clamp(owners, n),
            owners_low: clamp(owners - q, n),
            owners_high: clamp(owners + q, n),
            units: detail.then(|| clamp(signed(1), n * UNIT_CAP as u64)),
            ratings: detail.then(|| [2, 3, 4, 5, 6].map(|i| clamp(signed(i), n))),
        }
    }
}

/// The smallest `q` with `P(|N| ≤ q) ≥ 0.9` for `N = Y − Z`, `Y, Z ~ NB(mass, α)` independent
/// (spec §9.6.4). 0 when there is no noise.
pub fn half_width(alpha: f64, mass: f64) -> i64 {
    if alpha <= 0.0 || mass <= 0.0 {
        return 0;
    }
    // Var(N) = 2·mass·α/(1−α)². Where the pmf would take more than about 20 000 terms
    // (tiny ε, or a large mass), N is a sum of many independent draws and close to normal:
    // take the normal quantile, one wider, instead of work quadratic in the spread.
    let variance = 2.0 * mass * alpha / (1.0 - alpha).powi(2);
    let mean = mass * alpha / (1.0 - alpha);
    if mean + 30.0 * variance.sqrt() > 20_000.0 {
        return (NORMAL_90 * variance.sqrt()).ceil() as i64 + 1;
    }
    let p = polya_pmf(alpha, mass);
    // P(N = k) = Σ_j p(j) p(j + |k|).
    let diff = |k: usize| -> f64 { p.iter().zip(&p[k.min(p.len())..]).map(|(a, b)| a * b).sum() };
    let mut covered = diff(0);
    let mut q = 0usize;
    while covered < CONFIDENCE && q + 1 < p.len() {
        q += 1;
        covered += 2.0 * diff(q);
    }
    q as i64
}

/// The probabilities of NB(mass, α) from 0 up to where they no longer matter (below 10⁻¹⁵
/// of the mode, past the mean), normalised. Computed in logarithms so that large masses do
/// not underflow.
fn polya_pmf(alpha: f64, mass: f64) -> Vec<f64> {
    let mean = mass * alpha / (1.0 - alpha);
    let mut logs = vec![mass * (1.0 - alpha).ln()];
    let mut best = logs[0];
    let mut j = 0.0f64;
    loop {
        let next = logs.last().unwrap() + (alpha * (j + mass) / (j + 1.0)).ln();
        j += 1.0;
        best = best.max(next);
        logs.push(next);
        if j > mean && next < best - 35.0 {
            break;
        }
    }
    let ps: Vec<f64> = logs.iter().map(|l| (l - best).exp()).collect();
    let total: f64 = ps.iter().sum();
    ps.into_iter().map(|x| x / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discrete_laplace_half_width_matches_its_closed_form() {
        // For mass 1, N is discrete Laplace: P(|N| > q) = 2α^(q+1)/(1+α).
        for eps in [0.5f64, 1.0, 2.0] {
            let alpha = (-eps).exp();
            let q = half_width(alpha, 1.0);
            let tail = |q: i64| 2.0 * alpha.powi(q as i32 + 1) / (1.0 + alpha);
            assert!(tail(q) <= 1.0 - CONFIDENCE + 1e-12, "ε={eps}");
            assert!(
                q == 0 || tail(q - 1) > 1.0 - CONFIDENCE,
                "ε={eps}: smallest"
            );
        }
        assert_eq!(half_width((-1.0f64).exp(), 1.0), 2, "±2 at ε = 1");
        assert_eq!(half_width(0.0, 5.0), 0);
        // Larger masses widen it like a normal of variance 2Rα/(1−α)².
        let alpha = (-1.0f64).exp();
        let wide = half_width(alpha, 400.0) as f64;
        let normal = 1.645 * (400.0 * 2.0 * alpha / (1.0 - alpha).powi(2)).sqrt();
        assert!((wide - normal).abs() <= 2.0, "{wide} vs {normal}");
        assert!(half_width(alpha, 5000.0) > 0, "no underflow");
        // ε = 0.01 over 1000 members: the normal quantile, at once.
        let tiny = (-0.01f64 / 3.0).exp();
        let started = std::time::Instant::now();
        let q = half_width(tiny, 1000.0) as f64;
        let sd = (2000.0 * tiny / (1.0 - tiny).powi(2)).sqrt();
        assert!((q - 1.645 * sd).abs() < 3.0, "{q} vs {}", 1.645 * sd);
        assert!(started.elapsed().as_secs() < 1);
    }

    #[test]
    fn releases_are_clamped_and_never_negative() {
        let mut cells = [0u32; VECTOR_LEN];
        cells[0] = (-3i32) as u32;
        let noise = Some(NoiseLeft {
            epsilon: 1.0,
            detail: false,
            mass: 1.0,
        });
        let a = AggregateSum::release(&cells, 11, false, noise);
        assert_eq!((a.owners, a.owners_low, a.owners_high), (0, 0, 0));
        assert_eq!((a.units, a.ratings), (None, None));
        cells[0] = 4;
        let a = AggregateSum::release(&cells, 11, false, noise);
        assert_eq!((a.owners, a.owners_low, a.owners_high), (4, 2, 6));
        cells[0] = 40;
        cells[1] = (-2i32) as u32;
        let a = AggregateSum::release(&cells, 11, true, None);
        assert_eq!((a.owners, a.owners_low, a.owners_high), (11, 11, 11));
        assert_eq!(a.units, Some(0));
        assert_eq!(a.ratings, Some([0; 5]));
    }
}
