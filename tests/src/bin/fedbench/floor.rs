//! A responder's crypto floor: the public-key operations the protocol made it do, times
//! their unit cost timed here, with the libraries kith uses (x25519-dalek, ring). No
//! implementation of the protocol can go below it.

use std::time::Instant;

use kith_protocol::aggregation::CryptoWork;
use rand_core::{OsRng, RngCore};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::Serialize;

/// Unit costs in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UnitCosts {
    pub x25519_agreement_us: f64,
    pub ed25519_verify_us: f64,
}

impl UnitCosts {
    /// Time each operation in batches and keep the median batch, so that a hiccup of the
    /// machine does not set the floor.
    pub fn measure() -> UnitCosts {
        UnitCosts {
            x25519_agreement_us: median_us(|| {
                let mut s = [0u8; 32];
                OsRng.fill_bytes(&mut s);
                let mine = x25519_dalek::StaticSecret::from(s);
                OsRng.fill_bytes(&mut s);
                let theirs = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(s));
                move || {
                    std::hint::black_box(mine.diffie_hellman(&theirs));
                }
            }),
            ed25519_verify_us: median_us(|| {
                let rng = ring::rand::SystemRandom::new();
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
                let msg = [7u8; 200];
                let sig = pair.sign(&msg);
                let public = pair.public_key().as_ref().to_vec();
                move || {
                    UnparsedPublicKey::new(&ED25519, &public)
                        .verify(&msg, sig.as_ref())
                        .expect("valid signature")
                }
            }),
        }
    }

    /// What `work` costs at these unit prices, in milliseconds.
    pub fn floor_ms(&self, work: &PerResponder) -> f64 {
        (work.agreements * self.x25519_agreement_us + work.verifications * self.ed25519_verify_us)
            / 1000.0
    }
}

/// Mean operations per responder per ask.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerResponder {
    pub agreements: f64,
    pub verifications: f64,
    pub signatures: f64,
    pub key_generations: f64,
}

impl PerResponder {
    pub fn mean(total: CryptoWork, responders: usize, asks: usize) -> Self {
        let d = (responders.max(1) * asks.max(1)) as f64;
        PerResponder {
            agreements: total.agreements as f64 / d,
            verifications: total.verifications as f64 / d,
            signatures: total.signatures as f64 / d,
            key_generations: total.key_generations as f64 / d,
        }
    }
}

const BATCH: usize = 300;
const BATCHES: usize = 9;

fn median_us<F: FnMut()>(setup: impl Fn() -> F) -> f64 {
    let mut per_op: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let mut op = setup();
            let t = Instant::now();
            for _ in 0..BATCH {
                op();
            }
            t.elapsed().as_secs_f64() * 1e6 / BATCH as f64
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    per_op[BATCHES / 2]
}
