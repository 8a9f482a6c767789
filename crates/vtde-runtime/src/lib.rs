//! vtde-runtime: runs vtde model packages — CLIP-style vision-text dual encoders exported
//! by `vtde-export` — with ONNX Runtime, with no Python.
//!
//! A package (see `docs/package-format.md`) is a directory with `vtde.json`, three ONNX
//! graphs and a `tokenizer.json`. [`Model::open`] checks it and prepares the sessions;
//! the model then turns images and texts into embeddings and scores exactly as
//! transformers' `VisionTextDualEncoderModel` / `CLIPModel` with the PIL image backend
//! does. A [`Model`] is `Send + Sync`: open it once and share it between threads.
//!
//! ```
//! use vtde_runtime::{read_image, ImageOptions, Model, RuntimeOptions};
//!
//! # fn main() -> vtde_runtime::Result<()> {
//! # let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
//! # if vtde_runtime::load_onnxruntime(None).is_err() { return Ok(()); } // no library here
//! # let (package, photo) = (root.join("models/demo"), root.join("models/examples/red_circle.png"));
//! let model = Model::open(&package, &RuntimeOptions::default().with_threads(2))?;
//! let image = read_image(&photo, &ImageOptions::default())?;
//! let images = model.embed_images(&[image])?;
//! let labels = model.embed_labels(&["a red circle", "a blue square"], &["{}"])?;
//! let scores = model.score(images.view(), labels.view())?;
//! assert!(scores.probs_per_image[[0, 0]] > scores.probs_per_image[[0, 1]]);
//! # Ok(())
//! # }
//! ```
//!
//! Folders of image files go through the streaming pipeline,
//! [`Model::stream_image_files`]: decoding on a pool of threads with backpressure, ordered
//! batches, a per-file error for each bad file.
//!
//! Inside, one module per concept (all private; what callers need is re-exported here):
//! `package` (opening a package directory and checking its files; the manifest itself is
//! the [`vtde_package`] crate's), `checksum_cache` (remembering verified files for a fast
//! second open), `onnxruntime` (finding and loading the library), `session` (session pools
//! and execution providers), `provider_name` (providers by name, for the C and Python
//! bindings), `preprocess` (images to `pixel_values`: decoding per format,
//! colour, Pillow's resampling, the processor; texts to token arrays), `pipeline` (the
//! streaming image pipeline), `model` ([`Model`]), `labels` (label embeddings with prompt
//! templates), `similarity` (normalization, logits, probabilities, loss) and `error`.

mod checksum_cache;
mod error;
mod labels;
mod model;
mod onnxruntime;
mod options;
mod package;
mod pipeline;
mod preprocess;
mod provider_name;
mod session;
mod similarity;

pub use error::{Error, LibraryAttempt, Result, ORT_FIX_HINT};
pub use model::{ImageFileEmbeddings, Model};
pub use onnxruntime::{
    load_onnxruntime, loaded_onnxruntime, onnxruntime_info, OnnxRuntimeInfo, ONNXRUNTIME_VERSION,
};
pub use options::RuntimeOptions;
pub use package::{Package, PackageOptions};
pub use pipeline::{ImageBatch, ImageSource};
pub use preprocess::image::{
    decode_image, read_image, to_rgb8, ImageOptions, ImagePreprocessor, DEFAULT_MAX_PIXELS,
};
pub use preprocess::text::{TextBatch, TextTokenizer};
pub use session::{
    CoreMlComputeUnits, CoreMlOptions, ExecutionProvider, GraphPlacement, OptimizationLevel,
    TensorRtOptions,
};
pub use similarity::{contrastive_loss, l2_normalize, scores, Scores};

pub use vtde_package::{manifest, GraphKind, Manifest, Precision};

/// Re-exported so that callers use the same versions: the package contract
/// (`vtde_package`: manifest types, graph names, checksums), `image` and `ndarray`.
pub use image;
pub use ndarray;
pub use vtde_package;
