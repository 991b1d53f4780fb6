//! Shared test fixtures.
#![allow(dead_code)]

pub mod agent;
pub mod sshd;
pub mod tiny;
