//! vtde-runtime: loads a vtde model package and runs it with ONNX Runtime.
//!
//! A package (see `DESIGN.md`) is a directory with `vtde.json`, three ONNX graphs and a
//! `tokenizer.json`. [`Model::open`] checks it and prepares sessions; the model then
//! turns images and texts into embeddings and scores, matching transformers'
//! `VisionTextDualEncoderModel` / `CLIPModel`:
//!
//! ```no_run
//! use vtde_runtime::{load_image, Model, RuntimeOptions};
//!
//! # fn main() -> vtde_runtime::Result<()> {
//! let model = Model::open("clip-package", &RuntimeOptions::default())?;
//! let image = load_image("cat.jpg".as_ref())?;
//! let images = model.embed_images(&[image])?;
//! let texts = model.embed_texts(&["a photo of a cat", "a photo of a dog"])?;
//! let scores = model.score(images.view(), texts.view())?;
//! println!("{:?}", scores.probs_per_image);
//! # Ok(())
//! # }
//! ```
//!
//! Modules, one concept each:
//! - [`manifest`]: the `vtde.json` contract shared with the exporter;
//! - [`package`]: opening a package directory and checking its files;
//! - [`checksum_cache`]: remembering verified graphs, for a fast second open;
//! - [`onnxruntime`]: finding and loading the ONNX Runtime library;
//! - [`session`]: session pools for thread-safe inference, execution providers;
//! - [`preprocess`]: images to `pixel_values`, texts to token arrays;
//! - [`similarity`]: normalization, logits, probabilities, contrastive loss;
//! - [`model`]: [`Model`], the entry point;
//! - [`error`]: the [`Error`] type.

pub mod checksum_cache;
pub mod error;
pub mod manifest;
pub mod model;
pub mod onnxruntime;
pub mod package;
pub mod preprocess;
pub mod session;
pub mod similarity;

pub use error::{Error, GraphKind, Result};
pub use manifest::Manifest;
pub use model::{load_image, ImageFileEmbeddings, Model, RuntimeOptions};
pub use package::Package;
pub use preprocess::{
    decode_image_bytes, read_image, ImageOptions, ImagePreprocessor, PreprocessedFiles, TextBatch,
    TextTokenizer,
};
pub use session::{ExecutionProvider, OptimizationLevel};
pub use similarity::Scores;

/// Re-exported so that callers use the same `image` and `ndarray` versions.
pub use image;
pub use ndarray;
