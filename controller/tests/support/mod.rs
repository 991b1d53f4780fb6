//! Shared test fixtures.
#![allow(dead_code)]

pub mod agent;
pub mod fake_arm;
pub mod relay;
pub mod sshd;
pub mod tiny;
