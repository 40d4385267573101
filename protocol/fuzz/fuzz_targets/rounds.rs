#![no_main]
//! See `kith_protocol::testing::fuzz::rounds`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kith_protocol::testing::fuzz::rounds(data));
