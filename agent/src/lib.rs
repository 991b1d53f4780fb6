//! The benchvm agent: everything that runs on the benchmark host.

pub mod bench;
pub mod config;
pub mod error;
pub mod exit;
pub mod layers;
pub mod measure;
pub mod stats;
pub mod checkout;
pub mod machine;
pub mod spans;
pub mod cache;
pub mod install;
pub mod compare;
pub mod report;
pub mod cli;
