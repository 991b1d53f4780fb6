//! The agent's expected errors. Each maps to one documented exit code (see [`crate::exit`]);
//! programmer errors panic instead.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::exit;

/// An expected failure of an agent command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `bench.yml` is missing, malformed or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A flag or argument is wrong (for example a ref that does not exist).
    #[error("{0}")]
    Usage(String),
    /// A tool the run depends on failed (git, Python, the install command).
    #[error("failed to {action}: {detail}")]
    Infra { action: String, detail: String },
    /// Reading or writing a file failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The documented exit code for this error.
    pub fn process_exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => exit::USAGE,
            Error::Infra { .. } | Error::Io { .. } => exit::INFRA,
        }
    }

    pub(crate) fn infra(action: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Infra {
            action: action.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
