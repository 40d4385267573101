//! Shamir t-of-n secret sharing over the scalar field of Curve25519,
//! ℓ = 2²⁵² + 27742317777372353535851937790883648493 (spec §9.4).
//!
//! The field is large, so share indices go up to 2³² − 1 (no 255-share cap as in GF(256)).
//! A share is `(x, f(x))` for a random polynomial `f` of degree `t − 1` with `f(0)` the
//! secret; any `t` shares with distinct non-zero `x` give `f(0)` by Lagrange interpolation.
//!
//! Reconstruction is split so that many secrets shared to the same holders cost one
//! O(t²) coefficient computation ([`lagrange_at_zero`]) plus O(t) per secret
//! ([`combine`]).

use curve25519_dalek::Scalar;
use rand_core::CryptoRngCore;
use zeroize::Zeroize;

/// Why sharing or reconstruction was refused (spec §9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    #[error("threshold must be at least 1 and at most the number of shares")]
    BadThreshold,
    #[error("share index 0 is reserved for the secret")]
    ZeroIndex,
    #[error("two shares have the same index")]
    DuplicateIndex,
    #[error("{have} shares, {need} needed")]
    TooFewShares { have: usize, need: usize },
}

/// A uniformly random scalar from 64 random bytes (bias < 2⁻²⁵⁹; spec §9.4).
pub fn random_scalar(rng: &mut impl CryptoRngCore) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    let s = Scalar::from_bytes_mod_order_wide(&wide);
    wide.zeroize();
    s
}

/// Split `secret` into one share per index in `xs` (each non-zero, all distinct), any
/// `threshold` of which reconstruct it. Returns `f(x)` in the order of `xs` (spec §9.4).
pub fn split(
    secret: &Scalar,
    threshold: usize,
    xs: &[u32],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Scalar>, ShamirError> {
    if threshold == 0 || threshold > xs.len() {
        return Err(ShamirError::BadThreshold);
    }
    check_indices(xs)?;
    let mut coefficients: Vec<Scalar> = Vec::with_capacity(threshold);
    coefficients.push(*secret);
    for _ in 1..threshold {
        coefficients.push(random_scalar(rng));
    }
    let shares = xs
        .iter()
        .map(|&x| {
            // Horner's rule.
            let x = Scalar::from(x as u64);
            coefficients
                .iter()
                .rev()
                .fold(Scalar::ZERO, |acc, c| acc * x + c)
        })
        .collect();
    coefficients.zeroize();
    Ok(shares)
}

fn check_indices(xs: &[u32]) -> Result<(), ShamirError> {
    if xs.contains(&0) {
        return Err(ShamirError::ZeroIndex);
    }
    let mut sorted = xs.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(ShamirError::DuplicateIndex);
    }
    Ok(())
}

/// The Lagrange coefficients λⱼ with f(0) = Σ λⱼ·f(xⱼ), for exactly the holders `xs` (spec §9.4).
pub fn lagrange_at_zero(xs: &[u32]) -> Result<Vec<Scalar>, ShamirError> {
    if xs.is_empty() {
        return Err(ShamirError::BadThreshold);
    }
    check_indices(xs)?;
    let x: Vec<Scalar> = xs.iter().map(|&v| Scalar::from(v as u64)).collect();
    // Numerators Π_{m≠j} x_m from prefix and suffix products: O(t).
    let mut numerators = vec![Scalar::ONE; x.len()];
    let mut prefix = Scalar::ONE;
    for (j, xj) in x.iter().enumerate() {
        numerators[j] = prefix;
        prefix *= xj;
    }
    let mut suffix = Scalar::ONE;
    for (j, xj) in x.iter().enumerate().rev() {
        numerators[j] *= suffix;
        suffix *= xj;
    }
    // Denominators Π_{m≠j} (x_m − x_j): the differences are small integers, so multiply
    // them in a u128 until it would overflow and only then in the field — a dozen
    // differences per field multiplication for indices up to about a thousand.
    let denominators: Vec<Scalar> = xs
        .iter()
        .enumerate()
        .map(|(j, &xj)| {
            let (mut den, mut acc, mut negative) = (Scalar::ONE, 1u128, false);
            for (m, &xm) in xs.iter().enumerate() {
                if m == j {
                    continue;
                }
                negative ^= xm < xj;
                let d = xm.abs_diff(xj) as u128;
                acc = match acc.checked_mul(d) {
                    Some(a) => a,
                    None => {
                        den *= Scalar::from(acc);
                        d
                    }
                };
            }
            den *= Scalar::from(acc);
            if negative {
                -den
            } else {
                den
            }
        })
        .collect();
    let mut denominators = denominators;
    // Distinct non-zero indices make every denominator non-zero.
    Scalar::invert_batch_alloc(&mut denominators);
    Ok(numerators
        .iter()
        .zip(&denominators)
        .map(|(n, d)| n * d)
        .collect())
}

/// f(0) from the shares `ys` of the holders whose coefficients are `lambdas` (same order).
/// Spec: §9.4.
pub fn combine(lambdas: &[Scalar], ys: &[Scalar]) -> Result<Scalar, ShamirError> {
    if ys.len() != lambdas.len() {
        return Err(ShamirError::TooFewShares {
            have: ys.len(),
            need: lambdas.len(),
        });
    }
    Ok(lambdas.iter().zip(ys).map(|(l, y)| l * y).sum())
}

/// Reconstruct from `(x, f(x))` pairs using the first `threshold` of them (spec §9.4).
pub fn reconstruct(shares: &[(u32, Scalar)], threshold: usize) -> Result<Scalar, ShamirError> {
    if threshold == 0 {
        return Err(ShamirError::BadThreshold);
    }
    if shares.len() < threshold {
        return Err(ShamirError::TooFewShares {
            have: shares.len(),
            need: threshold,
        });
    }
    let used = &shares[..threshold];
    let xs: Vec<u32> = used.iter().map(|s| s.0).collect();
    let ys: Vec<Scalar> = used.iter().map(|s| s.1).collect();
    combine(&lagrange_at_zero(&xs)?, &ys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_core::OsRng;

    #[test]
    fn any_t_of_n_reconstruct_fewer_do_not() {
        let secret = random_scalar(&mut OsRng);
        let xs: Vec<u32> = (1..=600).collect(); // well past GF(256)'s 255-share cap
        let ys = split(&secret, 301, &xs, &mut OsRng).unwrap();
        let mut pairs: Vec<(u32, Scalar)> = xs.iter().copied().zip(ys.iter().copied()).collect();
        assert_eq!(reconstruct(&pairs, 301).unwrap(), secret);
        pairs.reverse();
        assert_eq!(reconstruct(&pairs, 301).unwrap(), secret);
        // t − 1 shares interpolate to a different value (with overwhelming probability).
        assert_ne!(reconstruct(&pairs[..300], 300).unwrap(), secret);
        assert_eq!(
            reconstruct(&pairs[..300], 301),
            Err(ShamirError::TooFewShares {
                have: 300,
                need: 301
            })
        );
    }

    #[test]
    fn large_and_unordered_indices_reconstruct() {
        // Differences near 2³² overflow the u128 accumulator after three factors.
        let xs = [u32::MAX, 7, u32::MAX - 1, 1 << 31, 3, 1 << 20, 12_345];
        let secret = random_scalar(&mut OsRng);
        let ys = split(&secret, 6, &xs, &mut OsRng).unwrap();
        let pairs: Vec<(u32, Scalar)> = xs.iter().copied().zip(ys).collect();
        assert_eq!(reconstruct(&pairs, 6).unwrap(), secret);
        assert_eq!(reconstruct(&pairs[1..], 6).unwrap(), secret);
    }

    #[test]
    fn bad_indices() {
        let s = Scalar::ONE;
        assert_eq!(
            split(&s, 2, &[1, 1], &mut OsRng),
            Err(ShamirError::DuplicateIndex)
        );
        assert_eq!(
            split(&s, 2, &[0, 1], &mut OsRng),
            Err(ShamirError::ZeroIndex)
        );
        assert_eq!(
            split(&s, 3, &[1, 2], &mut OsRng),
            Err(ShamirError::BadThreshold)
        );
        assert_eq!(lagrange_at_zero(&[4, 4]), Err(ShamirError::DuplicateIndex));
    }

    proptest! {
        #[test]
        fn random_subsets(t in 1usize..12, extra in 0usize..8, seed in any::<u64>()) {
            let n = t + extra;
            let xs: Vec<u32> = (0..n as u32).map(|i| i * 7 + 1 + (seed % 5) as u32).collect();
            let secret = random_scalar(&mut OsRng);
            let ys = split(&secret, t, &xs, &mut OsRng).unwrap();
            let mut pairs: Vec<(u32, Scalar)> = xs.into_iter().zip(ys).collect();
            let rot = (seed as usize) % n;
            pairs.rotate_left(rot);
            prop_assert_eq!(reconstruct(&pairs, t).unwrap(), secret);
        }
    }
}
