//! Selective re-runs (ARCHITECTURE §4, issue 3). So far: block fingerprints of Python files and
//! the selection database; the selection itself (`impacted`) as a pure function.

pub mod fingerprint;
pub mod impacted;
pub mod in_compare;
pub mod local_loop;
pub mod replay;
pub mod store;
pub mod survey;
pub mod validate;
