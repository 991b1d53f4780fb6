//! The benchvm agent: everything that runs on the benchmark host.

pub mod bench;
pub mod cache;
pub mod calibration;
pub mod checkout;
pub mod cli;
pub mod compare;
pub mod config;
pub mod error;
pub mod exit;
pub mod git;
pub mod heartbeat;
pub mod install;
pub mod job;
pub mod layers;
pub mod lock;
pub mod machine;
pub mod measure;
pub mod python;
pub mod report;
pub mod select;
pub mod shard;
pub mod spans;
pub mod stats;
#[doc(hidden)]
pub mod test_support;
