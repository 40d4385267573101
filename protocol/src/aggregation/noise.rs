//! Distributed discrete-Laplace noise (spec §9.6).
//!
//! Each member adds `Y − Z` to every cell, with `Y`, `Z` independent Pólya (negative
//! binomial) draws `NB(r = 1/s, p = α)`, `s` the session's minimum survivors (`Params::
//! min_survivors`, not the Shamir threshold). Negative binomials
//! with a common `p` add up — Σ of `s` draws of `NB(1/s, α)` is `NB(1, α)`, a geometric
//! variable — so the total noise is the difference of two geometric variables: the discrete
//! Laplace distribution `P(k) ∝ α^|k|`, whatever the split among responders.
//!
//! A Pólya draw is sampled as the Poisson–Gamma mixture `λ ~ Gamma(shape r, scale
//! α/(1−α))`, `N ~ Poisson(λ)`, never as a rounded continuous Laplace variate (Mironov,
//! CCS 2012). Gamma uses Marsaglia–Tsang (with the `U^{1/r}` boost for `r < 1`); Poisson
//! uses sequential inversion for `λ < 30` and Hörmann's PTRS above.
//!
//! The privacy budget `ε` is split evenly over the vector's three parts (§9.2): `owners`
//! (sensitivity 1), `units` (sensitivity [`UNIT_CAP`]) and the rating histogram (L1
//! sensitivity 2), so cell `c` uses `α_c = exp(−ε / (3·Δ_c))` and the whole vector is
//! `ε`-differentially private by basic composition.

use rand_core::CryptoRngCore;

use super::input::{UNIT_CAP, VECTOR_LEN};

/// Per-cell sensitivity Δ_c (see the module doc; spec §9.6).
pub const SENSITIVITY: [f64; VECTOR_LEN] = [1.0, UNIT_CAP as f64, 2.0, 2.0, 2.0, 2.0, 2.0];

/// α for each cell at privacy budget `epsilon` (> 0; spec §9.6).
pub fn cell_alphas(epsilon: f64) -> [f64; VECTOR_LEN] {
    SENSITIVITY.map(|d| (-epsilon / (3.0 * d)).exp())
}

/// A uniform f64 in the open interval (0, 1), from 53 random bits.
fn uniform(rng: &mut impl CryptoRngCore) -> f64 {
    loop {
        let bits = rng.next_u64() >> 11;
        if bits != 0 {
            return bits as f64 / (1u64 << 53) as f64;
        }
    }
}

fn standard_normal(rng: &mut impl CryptoRngCore) -> f64 {
    // Marsaglia's polar method.
    loop {
        let u = 2.0 * uniform(rng) - 1.0;
        let v = 2.0 * uniform(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * s.ln() / s).sqrt();
        }
    }
}

/// Gamma(shape, 1).
fn gamma(rng: &mut impl CryptoRngCore, shape: f64) -> f64 {
    if shape < 1.0 {
        return gamma(rng, shape + 1.0) * uniform(rng).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = uniform(rng);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

fn ln_factorial(k: u64) -> f64 {
    if k < 20 {
        return (2..=k).map(|i| (i as f64).ln()).sum();
    }
    let n = k as f64;
    n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n.powi(3))
}

/// Poisson(λ).
fn poisson(rng: &mut impl CryptoRngCore, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda < 30.0 {
        // Sequential inversion.
        let mut k = 0u64;
        let mut p = (-lambda).exp();
        let mut cdf = p;
        let u = uniform(rng);
        while u > cdf && k < 10_000 {
            k += 1;
            p *= lambda / k as f64;
            cdf += p;
        }
        return k;
    }
    // PTRS: Hörmann, "The transformed rejection method for generating Poisson random
    // variables", Insurance: Mathematics and Economics 12 (1993).
    let smu = lambda.sqrt();
    let b = 0.931 + 2.53 * smu;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = uniform(rng) - 0.5;
        let v = uniform(rng);
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln()
            <= -lambda + k * lambda.ln() - ln_factorial(k as u64)
        {
            return k as u64;
        }
    }
}

/// One Pólya draw NB(r, α): failures before the r-th success with success probability 1−α.
/// Spec: §9.6.
pub fn polya(rng: &mut impl CryptoRngCore, r: f64, alpha: f64) -> u64 {
    if alpha <= 0.0 {
        return 0;
    }
    let lambda = gamma(rng, r) * alpha / (1.0 - alpha);
    poisson(rng, lambda)
}

/// This responder's noise share for each cell, for a session whose minimum survivors is
/// `s` (spec §9.6: calibrated to `s`, not to the threshold), as wrapping u32 (two's
/// complement of Y − Z).
///
/// `epsilon` must be positive and finite (callers check the range of §9.6).
pub fn noise_share(rng: &mut impl CryptoRngCore, epsilon: f64, s: u32) -> [u32; VECTOR_LEN] {
    assert!(epsilon.is_finite() && epsilon > 0.0, "ε must be positive");
    let r = 1.0 / s.max(1) as f64;
    cell_alphas(epsilon).map(|alpha| {
        let y = polya(rng, r, alpha) as i64;
        let z = polya(rng, r, alpha) as i64;
        (y - z) as i32 as u32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64, for reproducible statistics.
    use crate::fuzzing::SimRng as Seeded;

    fn mean_var(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        (
            m,
            xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
        )
    }

    #[test]
    fn summed_shares_are_discrete_laplace() {
        // Variance of discrete Laplace(α) is 2α/(1−α)².
        let mut rng = Seeded(42);
        for (t, alpha) in [(1u32, 0.5f64), (10, (-1.0f64).exp()), (50, 0.9)] {
            let draws: Vec<f64> = (0..20_000)
                .map(|_| {
                    (0..t)
                        .map(|_| {
                            polya(&mut rng, 1.0 / t as f64, alpha) as f64
                                - polya(&mut rng, 1.0 / t as f64, alpha) as f64
                        })
                        .sum()
                })
                .collect();
            let (m, v) = mean_var(&draws);
            let expected = 2.0 * alpha / (1.0 - alpha).powi(2);
            assert!(
                m.abs() < 0.05 * expected.sqrt() + 0.05,
                "t={t} α={alpha}: mean {m}"
            );
            assert!(
                (v / expected - 1.0).abs() < 0.06,
                "t={t} α={alpha}: var {v} vs {expected}"
            );
            // P(0) of discrete Laplace is (1−α)/(1+α).
            let p0 = draws.iter().filter(|&&x| x == 0.0).count() as f64 / draws.len() as f64;
            assert!(
                (p0 - (1.0 - alpha) / (1.0 + alpha)).abs() < 0.015,
                "t={t} α={alpha}: P(0) {p0}"
            );
        }
    }

    #[test]
    fn poisson_large_lambda_moments() {
        let mut rng = Seeded(7);
        for lambda in [35.0, 400.0] {
            let draws: Vec<f64> = (0..20_000)
                .map(|_| poisson(&mut rng, lambda) as f64)
                .collect();
            let (m, v) = mean_var(&draws);
            assert!((m / lambda - 1.0).abs() < 0.02, "λ={lambda} mean {m}");
            assert!((v / lambda - 1.0).abs() < 0.06, "λ={lambda} var {v}");
        }
    }

    #[test]
    fn budget_split() {
        let a = cell_alphas(1.0);
        assert!((a[0] - (-1.0f64 / 3.0).exp()).abs() < 1e-12);
        assert!(a[1] > a[0] && a[2] > a[0]);
    }
}
