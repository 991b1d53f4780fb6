//! Shared test fixtures.
#![allow(dead_code)]

pub mod sshd;
pub mod tiny;
