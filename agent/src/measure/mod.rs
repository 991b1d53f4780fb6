//! Taking samples: one process run at a time ([`runner`]), scheduled in randomized
//! base/head pairs ([`scheduler`]).

pub mod confine;
pub mod runner;
pub mod scheduler;
pub mod server;
