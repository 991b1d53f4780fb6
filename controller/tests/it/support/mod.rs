//! Shared test fixtures.
#![allow(dead_code)]

pub mod agent;
pub mod fake_arm;
pub mod fake_github;
pub mod http;
pub mod relay;
pub mod sshd;
pub mod tiny;
