//! Shared by the agent's integration tests (the helpers live in the library, so the
//! controller's tests use the same ones).

pub use benchvm_agent::test_support::{sh, write};
