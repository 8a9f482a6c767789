//! The exporter's error type. Every variant names the file or weight it is about and
//! says what is wrong, so that a user can fix the checkpoint without reading code.

use std::path::PathBuf;

/// Result alias for the exporter.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while exporting a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("{path} is missing: {hint}")]
    MissingFile { path: PathBuf, hint: String },

    #[error("{path}: {problem}")]
    Config { path: PathBuf, problem: String },

    #[error("{path}: unsupported {what} `{found}`; vtde exports {supported}")]
    Unsupported {
        path: PathBuf,
        what: &'static str,
        found: String,
        supported: String,
    },

    #[error("{path} is not a valid safetensors file: {problem}")]
    Safetensors { path: PathBuf, problem: String },

    #[error("the checkpoint has no weight `{name}` (looked for: {tried})")]
    MissingWeight { name: String, tried: String },

    #[error("weight `{name}` has shape {found:?}, expected {expected:?}")]
    WeightShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error("weight `{name}` is stored as {dtype}; vtde reads F32, F16 and BF16 weights")]
    WeightDtype { name: String, dtype: String },
}
