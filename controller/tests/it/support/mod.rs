//! Shared test fixtures.
#![allow(dead_code)]

pub mod agent;
pub mod cloud;
pub mod fake_arm;
pub mod fake_github;
pub mod http;
pub mod procs;
pub mod relay;
pub mod sshd;
pub mod tiny;
