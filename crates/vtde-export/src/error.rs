//! The exporter's error type. Every variant names the file or weight it is about and
//! says what is wrong, so that a user can fix the checkpoint without reading code.

use std::path::PathBuf;

/// Result alias for the exporter.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while exporting a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A checkpoint file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file it is about.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A package file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file it is about.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A JSON file of the checkpoint does not parse.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        /// The file it is about.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },

    /// A file the export needs is not in the checkpoint directory.
    #[error("{path} is missing: {hint}")]
    MissingFile {
        /// The file it is about.
        path: PathBuf,
        /// How to fix it.
        hint: String,
    },

    /// `config.json` (or a processor config) has a missing or bad value.
    #[error("{path}: {problem}")]
    Config {
        /// The file it is about.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// The checkpoint is of an architecture or tower vtde does not export.
    #[error("{path}: unsupported {what} `{found}`; vtde exports {supported}")]
    Unsupported {
        /// The file it is about.
        path: PathBuf,
        /// What was being read or checked.
        what: &'static str,
        /// What was found.
        found: String,
        /// What is supported.
        supported: String,
    },

    /// A weights file is not valid safetensors.
    #[error("{path} is not a valid safetensors file: {problem}")]
    Safetensors {
        /// The file it is about.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A weight the architecture needs is not in the checkpoint.
    #[error("the checkpoint has no weight `{name}` (looked for: {tried})")]
    MissingWeight {
        /// The tensor's name in the checkpoint.
        name: String,
        /// The names looked for.
        tried: String,
    },

    /// A weight has another shape than the config implies.
    #[error("weight `{name}` has shape {found:?}, expected {expected:?}")]
    WeightShape {
        /// The tensor's name in the checkpoint.
        name: String,
        /// What was expected.
        expected: Vec<usize>,
        /// What was found.
        found: Vec<usize>,
    },

    /// A weight the export reads holds a NaN or an infinity.
    #[error(
        "weight `{name}` in {path} holds {value} (at flat index {index}); a package made from \
         it would score NaN"
    )]
    NonFiniteWeight {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor's name in the checkpoint.
        name: String,
        /// The first non-finite value.
        value: f32,
        /// Its index in the flattened tensor.
        index: usize,
    },

    /// The config says fewer layers than the weights hold: the export would drop layers
    /// silently.
    #[error(
        "{path}: `{field}` is {configured}, but the weights hold {} layers (up to `{example}`); \
         the config does not match the weights", .found + 1
    )]
    LayerCount {
        /// `config.json`.
        path: PathBuf,
        /// The config field, e.g. `vision_config.num_hidden_layers`.
        field: String,
        /// Its value.
        configured: usize,
        /// The highest layer index found in the weights.
        found: usize,
        /// A weight of that layer.
        example: String,
    },

    /// The package would break the package contract, so the runtime would refuse it; it
    /// is not written. `source` names the checkpoint file and field it came from.
    #[error("{source_file}: {source_field} gives a package the runtime would refuse: {problem}")]
    Contract {
        /// The checkpoint file the value came from.
        source_file: PathBuf,
        /// The field or weight in it.
        source_field: String,
        /// The contract's message, naming the manifest field.
        problem: String,
    },

    /// A weight is stored in a type vtde does not read.
    #[error("weight `{name}` is stored as {dtype}; vtde reads F32, F16 and BF16 weights")]
    WeightDtype {
        /// The tensor's name in the checkpoint.
        name: String,
        /// Its data type.
        dtype: String,
    },
}
