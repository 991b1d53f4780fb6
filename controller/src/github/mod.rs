//! Running as a GitHub Action: the event that triggered the job ([`context`]), the REST
//! calls ([`api`]) and the readout — sticky comment, job summary, step outputs ([`readout`]).

pub mod api;
pub mod context;
pub mod readout;
