//! The benchvm agent: everything that runs on the benchmark host.

pub mod bench;
pub mod config;
pub mod error;
pub mod exit;
pub mod layers;
pub mod measure;
pub mod stats;
