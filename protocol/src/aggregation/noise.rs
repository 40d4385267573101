//! Distributed discrete-Laplace noise, sized by each member from its own view (spec §9.6).
//!
//! Noise is a difference `Y − Z` of two Pólya (negative binomial) variables `NB(r, α)` with a
//! common `α`. Pólya variables with one `α` add up: `NB(r₁, α) + NB(r₂, α) = NB(r₁ + r₂, α)`,
//! and `NB(1, α) − NB(1, α)` is the discrete Laplace distribution `P(k) ∝ α^|k|`, which makes
//! a count of sensitivity 1 `ln(1/α)`-differentially private. We call `r` the noise **mass**:
//! a sum holding mass `R ≥ 1` of noise that the asker does not know is `ε`-DP for every
//! member in it; with `R < 1` it is `(ε + ln(1/R))`-DP (spec §9.6.3 proves both).
//!
//! A member never sizes its noise by a number the asker chose. It draws the whole mass 1 as
//! a [`NoiseDraw`]: a **base** component of mass `1/w` that it never removes (`w` counts
//! itself and the neighbours it can authenticate as its own contacts, spec §9.6.2) and an
//! **excess** of mass `1 − 1/w` in [`LADDER`] components. After the survivor list is signed
//! (round 4), it reveals the values of just enough excess components that what stays in the
//! sum, with the bases its counted contacts declared, still adds up to a whole draw
//! ([`NoiseDraw::release`]). A member that drops out before then leaves its whole mass in:
//! the answer gets wider, never less private.
//!
//! A Pólya draw is sampled as the Poisson–Gamma mixture `λ ~ Gamma(shape r, scale
//! α/(1−α))`, `N ~ Poisson(λ)`, never as a rounded continuous Laplace variate (Mironov,
//! CCS 2012). Gamma uses Marsaglia–Tsang (with the `U^{1/r}` boost for `r < 1`); Poisson
//! uses sequential inversion for `λ < 30` and Hörmann's PTRS above.
//!
//! By default the whole `ε` is spent on `owners` (sensitivity 1) and no other cell carries
//! noise or data. With `detail`, `ε` is split evenly over the vector's three parts (§9.2):
//! `owners` (sensitivity 1), `units` (sensitivity [`UNIT_CAP`]) and the rating histogram
//! (L1 sensitivity 2), so cell `c` uses `α_c = exp(−ε / (3·Δ_c))` and the whole vector is
//! `ε`-differentially private by basic composition.

use rand_core::CryptoRngCore;

use super::input::{UNIT_CAP, VECTOR_LEN};

/// Per-cell sensitivity Δ_c (see the module doc; spec §9.6).
pub const SENSITIVITY: [f64; VECTOR_LEN] = [1.0, UNIT_CAP as f64, 2.0, 2.0, 2.0, 2.0, 2.0];

/// α for each cell at privacy budget `epsilon` (> 0; spec §9.6.1): the whole ε on `owners`
/// and α = 0 (no noise) elsewhere, or with `detail` ε split over the three parts.
pub fn cell_alphas(epsilon: f64, detail: bool) -> [f64; VECTOR_LEN] {
    if detail {
        SENSITIVITY.map(|d| (-epsilon / (3.0 * d)).exp())
    } else {
        let mut alphas = [0.0; VECTOR_LEN];
        alphas[0] = (-epsilon).exp();
        alphas
    }
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

/// Excess components of a [`NoiseDraw`], largest first, in units of `1/64` of the excess
/// mass: 32, 16, 8, 4, 2, 1 and 1, so any whole number of units from 0 to 64 is a subset
/// (spec §9.6.2).
pub const LADDER: [u32; 7] = [32, 16, 8, 4, 2, 1, 1];
/// Units in the whole excess mass (the sum of [`LADDER`]; spec §9.6.2).
pub const LADDER_UNITS: u32 = 64;

/// Noise mass in millionths, as it crosses the wire (spec §9.7.4).
pub type MicroMass = u32;
/// The whole mass, `1.0` (spec §9.7.4).
pub const WHOLE_MASS: MicroMass = 1_000_000;

/// One difference `Y − Z` of Pólya draws of mass `r` per cell, as wrapping u32 (two's
/// complement), and `0` where α is 0 (spec §9.6.1).
fn component(
    rng: &mut impl CryptoRngCore,
    r: f64,
    alphas: &[f64; VECTOR_LEN],
) -> [u32; VECTOR_LEN] {
    alphas.map(|alpha| {
        if r <= 0.0 || alpha <= 0.0 {
            return 0;
        }
        let y = polya(rng, r, alpha) as i64;
        let z = polya(rng, r, alpha) as i64;
        (y - z) as i32 as u32
    })
}

fn add(a: &mut [u32; VECTOR_LEN], b: &[u32; VECTOR_LEN]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.wrapping_add(*y);
    }
}

/// A member's whole noise, mass 1 per cell, as a base that stays in the sum and excess
/// components it may reveal later (spec §9.6.2). `Debug` hides every value.
pub struct NoiseDraw {
    base_mass: f64,
    base: [u32; VECTOR_LEN],
    excess: [[u32; VECTOR_LEN]; LADDER.len()],
}

impl core::fmt::Debug for NoiseDraw {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NoiseDraw")
            .field("base_mass", &self.base_mass)
            .field("values", &"<redacted>")
            .finish()
    }
}

impl Drop for NoiseDraw {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.base.zeroize();
        for c in &mut self.excess {
            c.zeroize();
        }
    }
}

impl NoiseDraw {
    /// Draw noise of whole mass 1 with base mass `1/base_divisor` (`base_divisor ≥ 1`):
    /// first the base component, then the ladder's components largest first, each as `y`
    /// then `z` per cell (spec §9.6.2). `epsilon` must be positive and finite.
    pub fn draw(
        rng: &mut impl CryptoRngCore,
        epsilon: f64,
        detail: bool,
        base_divisor: u32,
    ) -> NoiseDraw {
        assert!(epsilon.is_finite() && epsilon > 0.0, "ε must be positive");
        let alphas = cell_alphas(epsilon, detail);
        let base_mass = 1.0 / base_divisor.max(1) as f64;
        let base = component(rng, base_mass, &alphas);
        let unit = (1.0 - base_mass) / LADDER_UNITS as f64;
        let excess = LADDER.map(|units| component(rng, unit * units as f64, &alphas));
        NoiseDraw {
            base_mass,
            base,
            excess,
        }
    }

    /// The base mass `1/w` this draw never removes (spec §9.6.2).
    pub fn base_mass(&self) -> f64 {
        self.base_mass
    }

    /// The whole noise, base plus every excess component: what goes into the masked input
    /// (spec §9.6.2).
    pub fn total(&self) -> [u32; VECTOR_LEN] {
        let mut sum = self.base;
        for c in &self.excess {
            add(&mut sum, c);
        }
        sum
    }

    /// Keep at least mass `keep` (clamped to `[base, 1]`) and reveal the rest: the fewest
    /// ladder units that reach it stay, the others' values are summed into `removed`
    /// (spec §9.6.2). Returns the mass kept, in millionths rounded up, and `removed`.
    pub fn release(&self, keep: f64) -> (MicroMass, [u32; VECTOR_LEN]) {
        let excess_mass = 1.0 - self.base_mass;
        let units = if excess_mass <= 0.0 {
            0
        } else {
            let wanted = ((keep - self.base_mass) / excess_mass * LADDER_UNITS as f64).max(0.0);
            // A hair of tolerance so that an exact fraction does not round one unit up.
            ((wanted - 1e-9).ceil().max(0.0) as u32).min(LADDER_UNITS)
        };
        let mut left = units;
        let mut removed = [0u32; VECTOR_LEN];
        for (c, size) in self.excess.iter().zip(LADDER) {
            if size <= left {
                left -= size;
            } else {
                add(&mut removed, c);
            }
        }
        debug_assert_eq!(left, 0, "the ladder reaches every number of units");
        let kept = self.base_mass + excess_mass * units as f64 / LADDER_UNITS as f64;
        (to_micro(kept), removed)
    }
}

/// A mass in millionths, rounded up and at most [`WHOLE_MASS`] (spec §9.7.4).
pub fn to_micro(mass: f64) -> MicroMass {
    ((mass * WHOLE_MASS as f64 - 1e-6).ceil().max(0.0) as MicroMass).min(WHOLE_MASS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64, for reproducible statistics.
    use crate::testing::SimRng as Seeded;

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
        let a = cell_alphas(1.0, true);
        assert!((a[0] - (-1.0f64 / 3.0).exp()).abs() < 1e-12);
        assert!(a[1] > a[0] && a[2] > a[0]);
        let owners_only = cell_alphas(1.0, false);
        assert!((owners_only[0] - (-1.0f64).exp()).abs() < 1e-12);
        assert!(owners_only[1..].iter().all(|a| *a == 0.0));
    }

    #[test]
    fn ladder_reaches_every_unit_count() {
        assert_eq!(LADDER.iter().sum::<u32>(), LADDER_UNITS);
        let mut rng = Seeded(3);
        let draw = NoiseDraw::draw(&mut rng, 1.0, true, 4);
        let total = draw.total();
        for units in 0..=LADDER_UNITS {
            let keep = 0.25 + 0.75 * units as f64 / 64.0;
            let (kept, removed) = draw.release(keep);
            assert_eq!(kept, to_micro(keep), "units {units}");
            // What stays is the base plus the components whose units add up to `units`.
            let mut stays = draw.base;
            let mut left = units;
            for (c, size) in draw.excess.iter().zip(LADDER) {
                if size <= left {
                    left -= size;
                    add(&mut stays, c);
                }
            }
            let mut back = stays;
            add(&mut back, &removed);
            assert_eq!(back, total, "units {units}: kept + revealed = total");
        }
        let (kept, _) = draw.release(0.0);
        assert_eq!(kept, 250_000, "never below the base");
        let alone = NoiseDraw::draw(&mut rng, 1.0, false, 1);
        assert_eq!(alone.release(0.0), (WHOLE_MASS, [0; VECTOR_LEN]));
        assert!(alone.total()[1..].iter().all(|c| *c == 0), "owners only");
    }

    /// What stays after a release is distributed as NB(kept) − NB(kept): its variance is
    /// kept · 2α/(1−α)².
    #[test]
    fn released_noise_has_the_kept_variance() {
        let mut rng = Seeded(11);
        let alpha = (-1.0f64).exp();
        for (divisor, keep) in [(1u32, 0.0), (10, 0.1), (10, 0.55), (3, 1.0)] {
            let mut kept_mass = 0.0;
            let draws: Vec<f64> = (0..20_000)
                .map(|_| {
                    let d = NoiseDraw::draw(&mut rng, 1.0, false, divisor);
                    let (kept, removed) = d.release(keep);
                    kept_mass = kept as f64 / 1e6;
                    d.total()[0].wrapping_sub(removed[0]) as i32 as f64
                })
                .collect();
            let (m, v) = mean_var(&draws);
            let expected = kept_mass * 2.0 * alpha / (1.0 - alpha).powi(2);
            assert!(m.abs() < 0.05, "w={divisor} keep={keep}: mean {m}");
            assert!(
                (v / expected - 1.0).abs() < 0.07,
                "w={divisor} keep={keep}: var {v} vs {expected}"
            );
        }
    }
}
