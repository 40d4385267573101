//! The protocol's simulation harness lives in `kith_protocol::testing` (feature `testing`,
//! on for this crate's tests); the test files share it through this module.

#![allow(unused_imports)]

pub use kith_protocol::testing::*;
