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

    /// A graph file is not a protobuf that can be read for its external-data references
    /// (damaged or not an ONNX graph).
    #[error(
        "{path} is not a valid ONNX graph (read for the external-data files it references): \
         {message}"
    )]
    InvalidGraph {
        /// The graph file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A graph reads external data from a file that the manifest does not declare as its
    /// weights file, so that the file's sha256 would never be checked.
    #[error(
        "the graph {graph} reads external data from `{location}`, which the manifest does \
         not declare{}; the file's sha256 would not be checked, so the package is refused \
         (re-export it, or declare the file with its sha256 as the graph's `weights`)",
        match .declared { Some(d) => format!(" (the graph's `weights` is `{d}`)"), None => " (the graph's `weights` is null)".to_owned() }
    )]
    UndeclaredExternalData {
        /// The graph file.
        graph: PathBuf,
        /// The external-data `location` the graph names (relative to its directory).
        location: String,
        /// The weights file the manifest declares for the graph, if any.
        declared: Option<String>,
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
