#![no_main]
//! See `kith_protocol::testing::fuzz::messages`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kith_protocol::testing::fuzz::messages(data));
