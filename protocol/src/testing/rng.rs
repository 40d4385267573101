//! Deterministic randomness for simulations, fuzzing and seeded statistical tests.

/// SplitMix64: deterministic randomness for fuzzing, simulations and seeded statistical
/// tests, so every seed replays the same run. Not secure.
/// Test support for the simulations of §9.8; not part of the protocol. It implements
/// `CryptoRng` only so that the protocol's state machines accept it, and exists only with
/// the `testing` feature (or in the crate's own tests): the node never builds it.
#[derive(Debug, Clone)]
pub struct SimRng(pub u64);

impl rand_core::RngCore for SimRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for SimRng {}
