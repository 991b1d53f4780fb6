//! Shared by the agent's integration tests (the helpers live in the library, so the
//! controller's tests use the same ones).

#![allow(dead_code, unused_imports)] // each test crate uses its own share

pub use benchvm_agent::test_support::{sh, write};
