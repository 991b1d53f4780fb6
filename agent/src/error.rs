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
    /// The same, where the failure is an error of its own, kept as the source.
    #[error("failed to {action}: {source}")]
    Caused {
        action: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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
            Error::Infra { .. } | Error::Caused { .. } | Error::Io { .. } => exit::INFRA,
        }
    }

    pub(crate) fn infra(action: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Infra {
            action: action.into(),
            detail: detail.into(),
        }
    }

    /// A failure whose cause is an error value: its chain stays for callers and logs.
    pub(crate) fn caused(
        action: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Caused {
            action: action.into(),
            source: Box::new(source),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caused_error_reads_as_before_and_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Error::caused("run git", io);
        assert_eq!(e.to_string(), "failed to run git: no such file");
        let source = std::error::Error::source(&e).expect("the cause is kept");
        assert!(
            source.downcast_ref::<std::io::Error>().is_some(),
            "{source}"
        );
        assert_eq!(e.process_exit_code(), exit::INFRA);
    }
}
