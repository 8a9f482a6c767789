//! The runtime's error type.
//!
//! Every fallible function of the crate returns [`Result`]. Each variant names the file,
//! graph or input it is about and says what is wrong, so that a message printed as is
//! (`{err}`) tells the user what to fix. Nothing in the crate panics on bad input: a
//! corrupt image, a tampered package or a missing ONNX Runtime library all end up here.

use std::path::PathBuf;

use vtde_package::{GraphKind, Precision};

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// How to make the ONNX Runtime library findable, for the people who run an app.
pub const ORT_FIX_HINT: &str = "install ONNX Runtime 1.31.x and set ORT_DYLIB_PATH (or \
     RuntimeOptions::onnxruntime_library) to its libonnxruntime file, or put that file beside \
     the executable; in a vtde source checkout, `bash tools/fetch-onnxruntime.sh` fetches it";

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
        /// The file it is about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The manifest is missing, unreadable, invalid, or from a newer format version.
    #[error(transparent)]
    Package(#[from] vtde_package::Error),

    /// A package file's sha256 differs from the manifest: the file was changed or damaged.
    #[error(
        "checksum mismatch for {path}: the manifest expects sha256 {expected}, the file has \
         {actual}; the package is damaged or was modified"
    )]
    ChecksumMismatch {
        /// The file it is about.
        path: PathBuf,
        /// What was expected.
        expected: String,
        /// What was found.
        actual: String,
    },

    /// No usable ONNX Runtime library was found.
    #[error(
        "ONNX Runtime library not found or not loadable; tried:{}\nto fix: {hint}",
        format_attempts(.attempts)
    )]
    OnnxRuntimeNotFound {
        /// Every place looked at, and why it was not used.
        attempts: Vec<LibraryAttempt>,
        /// How to fix it.
        hint: &'static str,
    },

    /// The package has no graph in the precision asked for.
    #[error(
        "the package {package} has no {precision} variant of the {graph}; export one with \
         `vtde export --precision {precision}` (or `--quantize int8`), or run in fp32"
    )]
    MissingVariant {
        /// The package directory.
        package: PathBuf,
        /// The graph.
        graph: GraphKind,
        /// The precision asked for.
        precision: Precision,
    },

    /// The library loaded, but ONNX Runtime could not be set up.
    #[error("ONNX Runtime library {path} failed to initialise: {message}")]
    OnnxRuntimeInit {
        /// The file it is about.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// ONNX Runtime is already loaded in this process from another file.
    #[error(
        "ONNX Runtime is already loaded in this process from {loaded}; it cannot also be \
         loaded from {requested} (one library per process)"
    )]
    OnnxRuntimeAlreadyLoaded {
        /// The library loaded in this process.
        loaded: PathBuf,
        /// The library asked for now.
        requested: PathBuf,
    },

    /// An execution provider was requested that this build does not include.
    #[error(
        "execution provider {provider} is not compiled into this build of vtde-runtime \
         (enable the cargo feature `{feature}`)"
    )]
    ExecutionProviderUnavailable {
        /// The provider's name.
        provider: &'static str,
        /// The cargo feature that compiles it in.
        feature: &'static str,
    },

    /// ONNX Runtime refused to create a session for a graph.
    #[error("cannot create an ONNX Runtime session for the {graph} ({path}): {message}")]
    Session {
        /// The graph.
        graph: GraphKind,
        /// The file it is about.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A graph's inputs or outputs do not match the package contract.
    #[error("the {graph} ({path}) does not match the package contract: {message}")]
    GraphContract {
        /// The graph.
        graph: GraphKind,
        /// The file it is about.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// Running a graph failed.
    #[error("inference with the {graph} failed: {message}")]
    Inference {
        /// The graph.
        graph: GraphKind,
        /// What went wrong.
        message: String,
    },

    /// An image file cannot be opened or decoded.
    #[error("cannot decode image {path}: {message}")]
    ImageDecode {
        /// The file it is about.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// An image file is larger than the pixel limit
    /// ([`ImageOptions::max_pixels`](crate::ImageOptions::max_pixels)); it was
    /// refused from its header, before decoding (a decompression bomb, or a huge scan).
    #[error(
        "image {path} is {width}x{height} pixels, more than the limit of {max_pixels} \
         (a decompression bomb?); raise ImageOptions::max_pixels to accept it"
    )]
    ImageTooLarge {
        /// The file it is about.
        path: PathBuf,
        /// Width in pixels, from the header.
        width: u32,
        /// Height in pixels, from the header.
        height: u32,
        /// The limit.
        max_pixels: u64,
    },

    /// An image file's decoder panicked (a decoder bug); the panic was caught, and only
    /// this file failed.
    #[error("the image decoder panicked on {path}")]
    DecoderPanicked {
        /// The file it is about.
        path: PathBuf,
    },

    /// An image file cannot be read: it is missing or unreadable, it is not a regular file
    /// (a device, FIFO, socket or directory: refused without being read), or it holds more
    /// bytes than an image within the pixel limit needs. Also an input of the streaming
    /// pipeline that had no file to read (its
    /// [`ImageSource::unavailable`](crate::ImageSource::unavailable) said why).
    #[error("cannot read {path}: {message}")]
    ImageUnavailable {
        /// The file it is about.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// An image file decoded, but cannot be preprocessed (e.g. its resize would be too
    /// large).
    #[error("cannot preprocess image {path}: {message}")]
    ImagePreprocessFile {
        /// The file it is about.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// An image cannot be preprocessed (e.g. a zero-sized image).
    #[error("cannot preprocess image #{index}: {message}")]
    ImagePreprocess {
        /// The image's index in the call's input.
        index: usize,
        /// What went wrong.
        message: String,
    },

    /// The tokenizer file cannot be loaded, or tokenization failed.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The file it is about.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A prompt template for label embeddings has no `{}` for the label.
    #[error("prompt template {template:?} has no {{}} for the label")]
    BadTemplate {
        /// The template as given.
        template: String,
    },

    /// An array given to the runtime has the wrong shape.
    #[error("bad input shape for {what}: expected {expected}, got {actual}")]
    BadInputShape {
        /// What was being read or checked.
        what: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        actual: String,
    },

    /// The execution providers asked for cannot start for a graph, and the CPU may not
    /// take over ([`RuntimeOptions::fallback_to_cpu`](crate::RuntimeOptions::fallback_to_cpu)).
    #[error(
        "the {graph} ({path}) cannot run on {providers}: {cause}; to run it on the CPU \
         instead, allow CPU fallback (`--allow-cpu-fallback`, \
         RuntimeOptions::with_cpu_fallback)"
    )]
    ProviderFailed {
        /// The graph.
        graph: GraphKind,
        /// Its file.
        path: PathBuf,
        /// The providers asked for, in order.
        providers: String,
        /// Why each could not start.
        cause: String,
    },

    /// ONNX Runtime placed heavy operators of a graph on the CPU beside a GPU provider,
    /// and CPU fallback is not allowed.
    #[error(
        "the {graph} would run heavy operators on the CPU beside {provider}: {}; allow CPU \
         fallback (`--allow-cpu-fallback`, RuntimeOptions::with_cpu_fallback) to run it so",
        .nodes.join(", ")
    )]
    HeavyOperatorsOnCpu {
        /// The graph.
        graph: GraphKind,
        /// The provider that took the rest.
        provider: String,
        /// The operators on the CPU, as `OpType (node name)`.
        nodes: Vec<String>,
    },

    /// The precision asked for cannot run on an execution provider asked for.
    #[error(
        "the {precision} graphs are for the CPU and cannot run on {provider}; use the fp16 \
         variant (`vtde export --precision fp16`, `--run-precision fp16`)"
    )]
    PrecisionNotForProvider {
        /// The precision asked for.
        precision: Precision,
        /// The provider.
        provider: &'static str,
    },

    /// A score came out NaN or infinite (from an embedding that is zero or not finite,
    /// or a graph that computed NaN); it is an error rather than a number in an output.
    #[error(
        "the {what} of image {image} and text {text} is {value}, not a finite number (an \
         embedding is zero or not finite?)"
    )]
    NonFiniteScore {
        /// `logit` or `probability`.
        what: &'static str,
        /// The image's row in the image embeddings.
        image: usize,
        /// The text's row in the text embeddings.
        text: usize,
        /// The value.
        value: f32,
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
