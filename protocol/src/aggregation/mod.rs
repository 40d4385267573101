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
//! * [`noise`]: distributed discrete-Laplace noise from Pólya draws.

pub mod asker;
pub mod cohort;
pub mod input;
pub mod keys;
pub mod messages;
pub mod noise;
pub mod prg;
pub mod responder;
pub mod shamir;
