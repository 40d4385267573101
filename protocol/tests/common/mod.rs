//! Shared by the protocol's simulation tests.

/// SplitMix64: a deterministic RNG so that every seed replays the same run. Not secure;
/// for simulations only.
pub use kith_protocol::fuzzing::SimRng;
