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
    /// Anything else in the environment: files, processes, git, described in words.
    #[error("failed to {action}: {detail}")]
    Infra { action: String, detail: String },
    /// The same, where the failure is an error of its own, kept as the source.
    #[error("failed to {action}: {source}")]
    Caused {
        action: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn process_exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Agent { code } if *code == exit::USAGE => exit::USAGE,
            Error::Agent { .. }
            | Error::Report(_)
            | Error::Cancelled { .. }
            | Error::Infra { .. }
            | Error::Caused { .. } => exit::INFRA,
        }
    }

    pub(crate) fn infra(action: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Infra {
            action: action.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn caused(
        action: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Caused {
            action: action.into(),
            source: Box::new(source),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caused_error_reads_as_one_line_and_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = Error::caused("write report.json", io);
        assert_eq!(
            e.to_string(),
            "failed to write report.json: permission denied"
        );
        let source = std::error::Error::source(&e).expect("the cause is kept");
        assert_eq!(
            source.downcast_ref::<std::io::Error>().map(|io| io.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        assert_eq!(e.process_exit_code(), exit::INFRA);
    }
}
