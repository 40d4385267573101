#![no_main]
//! See `kith_protocol::testing::fuzz::frames`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kith_protocol::testing::fuzz::frames(data));
