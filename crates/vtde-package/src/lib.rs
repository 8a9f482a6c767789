//! vtde-package: the model package contract between `vtde-export`, which writes packages,
//! and `vtde-runtime`, which runs them (see `docs/design.md`).
//!
//! A package is a plain directory: `vtde.json` (the [`Manifest`]), three ONNX graphs
//! ([`GraphKind`]) with their weights beside them, precision variants ([`Precision`]),
//! and `tokenizer.json`. This crate holds what both sides must agree on, and nothing that
//! runs a model: no ONNX Runtime, no image decoding.
//!
//! - [`manifest`]: the types of `vtde.json` and the format version;
//! - [`names`]: the graphs' input and output names;
//! - [`GraphKind`]: the three graphs and the inputs and outputs each must have;
//! - [`Precision`]: fp32, and the fp16 and int8 variants;
//! - [`read_manifest`], [`parse_manifest`], [`validate_manifest`]: reading a manifest,
//!   newer format versions refused first, then the schema, then the values, within the
//!   bounds of [`limits`];
//! - [`check_external_data`]: that a graph reads external data only from its declared,
//!   hashed weights file;
//! - [`sha256_file`]: the checksum every file entry records.
//!
//! ```
//! use vtde_package::{parse_manifest, Error, FORMAT_VERSION};
//!
//! let newer = format!(r#"{{"format_version": {}}}"#, FORMAT_VERSION + 1);
//! let err = parse_manifest("vtde.json".as_ref(), newer.as_bytes()).unwrap_err();
//! assert!(matches!(err, Error::UnsupportedFormatVersion { .. }));
//! ```

mod checksum;
mod error;
mod external;
mod graph;
pub mod limits;
pub mod manifest;
pub mod names;
mod precision;
mod validate;

pub use checksum::{sha256_bytes, sha256_file};
pub use error::{Error, Result};
pub use external::{check_external_data, external_data_locations};
pub use graph::{Dim, ElementType, GraphKind, TensorSpec};
pub use manifest::{Manifest, FORMAT_VERSION, MANIFEST_FILE};
pub use precision::Precision;
pub use validate::{
    check_manifest, parse_manifest, read_manifest, validate_manifest, ManifestProblem,
};
