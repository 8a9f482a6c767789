//! Errors of reading a package's contract files. Each names the file and says what is
//! wrong, so that the message printed as is tells the user what to fix.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can be wrong with a package's manifest or files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file of the package is missing or cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },

    /// `vtde.json` is not valid JSON, does not match the manifest schema, or holds values
    /// that make no sense.
    #[error("invalid package manifest {path}: {message}")]
    InvalidManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },

    /// The manifest was written by a newer exporter than this build understands.
    #[error(
        "package manifest {path} has format_version {found}, but this vtde-runtime reads \
         format versions up to {supported}; upgrade vtde-runtime to open it"
    )]
    UnsupportedFormatVersion {
        /// The manifest file.
        path: PathBuf,
        /// The version it declares.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
