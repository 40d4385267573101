#![no_main]
//! See `kith_protocol::fuzzing::texts`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kith_protocol::fuzzing::texts(data));
