//! Private aggregate answers (spec §9): secure aggregation among the responders of one
//! ask, so the asker learns the noisy sum of their [`input`] vectors and nothing about any
//! single one.
//!
//! Building blocks, each with one purpose:
//!
//! * [`cohort`]: who shares with whom: the roster, the neighbour graph, the parameters;
//! * [`shamir`]: t-of-n sharing over the Curve25519 scalar field, for dropout recovery;
//! * [`prg`]: mask expansion, a ChaCha20 keystream over Z/2³²;
//! * [`input`]: what a responder contributes, shaped by its owner's consent;
//! * [`noise`]: distributed discrete-Laplace noise from Pólya draws, sized by each member;
//! * [`sizing`]: how a member sizes its noise from what it can check itself;
//! * [`estimate`]: the released counts, clamped, with their 90 % interval.

pub mod asker;
pub mod cohort;
pub mod estimate;
pub mod input;
pub mod keys;
pub mod messages;
pub mod noise;
pub mod prg;
pub mod responder;
pub mod session;
pub mod shamir;
pub mod sizing;

/// The public-key operations one party performed in aggregations (spec §11.16): what no
/// implementation of the protocol can avoid, counted so that benchmarks can state a
/// responder's crypto floor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CryptoWork {
    /// X25519 agreements with another party's key.
    pub agreements: u64,
    /// Ed25519 signature verifications.
    pub verifications: u64,
    /// Ed25519 signatures made.
    pub signatures: u64,
    /// X25519 public keys computed from fresh secrets.
    pub key_generations: u64,
}

impl core::ops::AddAssign for CryptoWork {
    fn add_assign(&mut self, o: Self) {
        self.agreements += o.agreements;
        self.verifications += o.verifications;
        self.signatures += o.signatures;
        self.key_generations += o.key_generations;
    }
}

impl core::ops::Sub for CryptoWork {
    type Output = Self;
    /// The work done between two readings of a tally (`self` the later).
    fn sub(self, o: Self) -> Self {
        CryptoWork {
            agreements: self.agreements.saturating_sub(o.agreements),
            verifications: self.verifications.saturating_sub(o.verifications),
            signatures: self.signatures.saturating_sub(o.signatures),
            key_generations: self.key_generations.saturating_sub(o.key_generations),
        }
    }
}
