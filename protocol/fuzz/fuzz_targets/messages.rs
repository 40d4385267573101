#![no_main]
//! See `kith_protocol::fuzzing::messages`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kith_protocol::fuzzing::messages(data));
