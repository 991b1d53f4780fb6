//! Selective re-runs (DESIGN §4, issue 3). So far: block fingerprints of Python files and
//! the selection database.

pub mod fingerprint;
pub mod store;
