//! The controller's expected errors, each with its documented exit code
//! ([`benchvm_agent::exit`]).

use benchvm_agent::exit;
use benchvm_agent::report::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag or input.
    #[error("{0}")]
    Usage(String),
    /// The agent stopped with an error it already printed; its exit code carries over.
    #[error("the agent failed (exit code {code})")]
    Agent { code: i32 },
    /// The agent's report could not be read.
    #[error(transparent)]
    Report(#[from] ReadError),
    /// The job was cancelled by a signal (the VM deallocation was requested).
    #[error("cancelled by {signal}")]
    Cancelled { signal: &'static str },
    /// Anything else in the environment: files, processes, git.
    #[error("failed to {action}: {detail}")]
    Infra { action: String, detail: String },
}

impl Error {
    pub fn process_exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Agent { code } if *code == exit::USAGE => exit::USAGE,
            Error::Agent { .. }
            | Error::Report(_)
            | Error::Cancelled { .. }
            | Error::Infra { .. } => exit::INFRA,
        }
    }

    pub(crate) fn infra(action: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Infra {
            action: action.into(),
            detail: detail.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
