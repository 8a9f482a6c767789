//! The crate's error type: every message names the file, row or tensor that is wrong.

use std::path::PathBuf;

/// What went wrong in composing or fitting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's contents are not what they must be.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Matrices or batches whose shapes do not fit together.
    #[error("{0}")]
    Shape(String),
    /// Settings that cannot work (for example a batch size of 0).
    #[error("{0}")]
    Settings(String),
    /// Training produced a loss or parameter that is not finite.
    #[error("training diverged at step {step}: the loss is {loss} (try a lower learning rate)")]
    Diverged {
        /// The optimizer step (1 for the first).
        step: u64,
        /// The loss at that step.
        loss: f32,
    },
    /// The observer asked to stop.
    #[error("stopped")]
    Stopped,
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
