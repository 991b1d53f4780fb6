//! Selective re-runs (DESIGN §4, issue 3). So far: block fingerprints of Python files.

pub mod fingerprint;
