//! Test support, behind the `testing` feature (always on in the crate's own tests): a
//! deterministic RNG, one simulation harness for aggregations on a virtual clock, and the
//! fuzzing entry points for the decoders of §5 and §3.3 and the rounds of §9.8. Nothing
//! here is part of the protocol, and the node never builds it.

pub mod fuzz;
mod rng;
mod sim;

pub use rng::SimRng;
pub use sim::*;
