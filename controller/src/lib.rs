//! The benchvm controller: validates inputs, runs the agent on a host, renders the report.

pub mod action;
pub mod azure;
pub mod cli;
pub mod error;
pub mod fixture;
pub mod github;
pub mod host;
pub mod signals;
pub mod ssh;
pub mod timings;
