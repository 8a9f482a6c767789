//! The runtime's error type.
//!
//! Every fallible function of the crate returns [`Result`]. Each variant names the file,
//! graph or input it is about and says what is wrong, so that a message printed as is
//! (`{err}`) tells the user what to fix. Nothing in the crate panics on bad input: a
//! corrupt image, a tampered package or a missing ONNX Runtime library all end up here.

use std::path::PathBuf;

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which graph of a package an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphKind {
    /// `vision.onnx`: `pixel_values` → `image_features`.
    Vision,
    /// `text.onnx`: `input_ids`, `attention_mask`[, `token_type_ids`] → `text_features`.
    Text,
    /// `projection.onnx`: features → embeddings.
    Projection,
}

impl GraphKind {
    /// All graphs, in manifest order.
    pub const ALL: [GraphKind; 3] = [GraphKind::Vision, GraphKind::Text, GraphKind::Projection];

    /// The graph's role name, as in the manifest (`vision`, `text`, `projection`).
    pub fn name(self) -> &'static str {
        match self {
            GraphKind::Vision => "vision",
            GraphKind::Text => "text",
            GraphKind::Projection => "projection",
        }
    }
}

impl std::fmt::Display for GraphKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} graph", self.name())
    }
}

/// One place where the ONNX Runtime library was looked for, and why it was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryAttempt {
    /// The file that was tried.
    pub path: PathBuf,
    /// Where this candidate came from (`RuntimeOptions::onnxruntime_library`,
    /// `ORT_DYLIB_PATH`, `beside the executable`, ...).
    pub source: String,
    /// Why it was not used (`not found`, or the loader's error).
    pub reason: String,
}

/// The command that installs the ONNX Runtime library where the runtime finds it.
pub const ORT_FIX_HINT: &str = "run `bash tools/fetch-onnxruntime.sh` in the vtde repository \
     (it installs the library into .cache/onnxruntime/1.31.1/), or set ORT_DYLIB_PATH to the \
     path of libonnxruntime 1.31.x";

fn format_attempts(attempts: &[LibraryAttempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("\n  - {} ({}): {}", a.path.display(), a.source, a.reason))
        .collect()
}

/// Everything that can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file of the package is missing or cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `vtde.json` is not valid JSON or does not match the manifest schema.
    #[error("invalid package manifest {path}: {message}")]
    InvalidManifest { path: PathBuf, message: String },

    /// The manifest was written by a newer exporter than this runtime understands.
    #[error(
        "package manifest {path} has format_version {found}, but this vtde-runtime reads \
         format versions up to {supported}; upgrade vtde-runtime to open it"
    )]
    UnsupportedFormatVersion {
        path: PathBuf,
        found: u64,
        supported: u32,
    },

    /// A package file's sha256 differs from the manifest: the file was changed or damaged.
    #[error(
        "checksum mismatch for {path}: the manifest expects sha256 {expected}, the file has \
         {actual}; the package is damaged or was modified"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// No usable ONNX Runtime library was found.
    #[error(
        "ONNX Runtime library not found or not loadable; tried:{}\nto fix: {hint}",
        format_attempts(.attempts)
    )]
    OnnxRuntimeNotFound {
        attempts: Vec<LibraryAttempt>,
        hint: &'static str,
    },

    /// The library loaded, but ONNX Runtime could not be set up.
    /// The package has no graph in the precision asked for.
    #[error(
        "the package {package} has no {precision} variant of the {graph}; export one with \
         `vtde export --precision {precision}` (or `--quantize int8`), or run in fp32"
    )]
    MissingVariant {
        package: PathBuf,
        graph: GraphKind,
        precision: crate::manifest::Precision,
    },

    #[error("ONNX Runtime library {path} failed to initialise: {message}")]
    OnnxRuntimeInit { path: PathBuf, message: String },

    /// ONNX Runtime is already loaded in this process from another file.
    #[error(
        "ONNX Runtime is already loaded in this process from {loaded}; it cannot also be \
         loaded from {requested} (one library per process)"
    )]
    OnnxRuntimeAlreadyLoaded { loaded: PathBuf, requested: PathBuf },

    /// An execution provider was requested that this build does not include.
    #[error(
        "execution provider {provider} is not compiled into this build of vtde-runtime \
         (enable the cargo feature `{feature}`)"
    )]
    ExecutionProviderUnavailable {
        provider: &'static str,
        feature: &'static str,
    },

    /// ONNX Runtime refused to create a session for a graph.
    #[error("cannot create an ONNX Runtime session for the {graph} ({path}): {message}")]
    Session {
        graph: GraphKind,
        path: PathBuf,
        message: String,
    },

    /// A graph's inputs or outputs do not match the package contract.
    #[error("the {graph} ({path}) does not match the package contract: {message}")]
    GraphContract {
        graph: GraphKind,
        path: PathBuf,
        message: String,
    },

    /// Running a graph failed.
    #[error("inference with the {graph} failed: {message}")]
    Inference { graph: GraphKind, message: String },

    /// An image file cannot be opened or decoded.
    #[error("cannot decode image {path}: {message}")]
    ImageDecode { path: PathBuf, message: String },

    /// An image file is larger than the pixel limit
    /// ([`ImageOptions::max_pixels`](crate::preprocess::ImageOptions::max_pixels)); it was
    /// refused from its header, before decoding (a decompression bomb, or a huge scan).
    #[error(
        "image {path} is {width}x{height} pixels, more than the limit of {max_pixels} \
         (a decompression bomb?); raise ImageOptions::max_pixels to accept it"
    )]
    ImageTooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        max_pixels: u64,
    },

    /// An image file decoded, but cannot be preprocessed (e.g. its resize would be too
    /// large).
    #[error("cannot preprocess image {path}: {message}")]
    ImagePreprocessFile { path: PathBuf, message: String },

    /// An image cannot be preprocessed (e.g. a zero-sized image).
    #[error("cannot preprocess image #{index}: {message}")]
    ImagePreprocess { index: usize, message: String },

    /// The tokenizer file cannot be loaded, or tokenization failed.
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },

    /// An array given to the runtime has the wrong shape.
    #[error("bad input shape for {what}: expected {expected}, got {actual}")]
    BadInputShape {
        what: &'static str,
        expected: String,
        actual: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad_shape(
        what: &'static str,
        expected: impl Into<String>,
        actual: impl std::fmt::Debug,
    ) -> Self {
        Error::BadInputShape {
            what,
            expected: expected.into(),
            actual: format!("{actual:?}"),
        }
    }
}
