//! vtde-fit: builds your own vision-text dual encoder without Python. [`compose`] puts a
//! pretrained vision checkpoint and a pretrained text checkpoint (as transformers saves
//! them) together into a `VisionTextDualEncoderModel` checkpoint with fresh projection
//! heads; [`fit`] trains those heads and `logit_scale` on tower features of image–caption
//! pairs with both towers locked (LiT), on the model's own contrastive loss, with AdamW
//! as torch runs it.
//!
//! Fitting works on feature matrices: row `i` of the image features and of the text
//! features are one pair, as the package's vision and text graphs compute them (the
//! towers' pooled outputs, before projection). The `vtde fit` command computes them with
//! `vtde-runtime` and caches them; this crate needs no ONNX Runtime.
//!
//! ```
//! use ndarray::Array2;
//! use vtde_fit::{fit, FitOptions, Heads, PairFeatures, SplitMix64};
//!
//! # fn main() -> vtde_fit::Result<()> {
//! // 64 pairs of 4 kinds; both towers see the kind (here: a one-hot feature).
//! let kinds: Vec<usize> = (0..64).map(|i| i % 4).collect();
//! let images = Array2::from_shape_fn((64, 8), |(r, c)| f32::from(u8::from(c == kinds[r])));
//! let texts = Array2::from_shape_fn((64, 6), |(r, c)| f32::from(u8::from(c == kinds[r] + 1)));
//! let heads = Heads::random(8, 6, 16, 0.02, 2.6592, &mut SplitMix64::new(0));
//! let options = FitOptions { epochs: 20, batch_size: 16, learning_rate: 1e-2, ..FitOptions::default() };
//! let (mut image_rows, mut text_rows) = (images.view(), texts.view());
//! let data = PairFeatures { images: &mut image_rows, texts: &mut text_rows, caption_ids: &kinds };
//! let report = fit(heads, data, &options, |_event| Ok(()))?;
//! let last = report.epochs.last().and_then(|e| e.validation.clone());
//! assert_eq!(last.and_then(|v| v.zero_shot), Some(1.0));
//! # Ok(())
//! # }
//! ```
//!
//! Modules: `heads` (the heads, loss and hand-written gradient), `optim` (AdamW and the
//! schedule), `train` (the optimizer loop and the recipe), `metrics` (recall and
//! zero-shot accuracy), `compose` (composing checkpoints), `checkpoint` (reading and replacing a checkpoint's heads), `pairs` (pairs files), `features` (`.npy` feature files streamed a batch at a time),
//! `compose` (composing checkpoints), `checkpoint` (reading and replacing a checkpoint's heads), `pairs` (pairs files), `rng` (the seeded generator), `error`.

mod checkpoint;
mod compose;
mod error;
mod features;
mod heads;
mod metrics;
mod optim;
mod pairs;
mod rng;
mod train;
mod weights_file;

pub use checkpoint::{read_heads, write_checkpoint_with_heads, HEAD_WEIGHTS};
pub use compose::{compose, ComposeOptions, Composed, TowerReport, COMPOSE_TEXT, COMPOSE_VISION};
pub use error::{Error, Result};
pub use features::{NpyFeatures, NpyWriter};
pub use heads::{Gradients, Heads};
pub use metrics::{evaluate, Evaluation, MAX_LABELS};
pub use optim::{warmup_cosine_factor, AdamWConfig, AdamWState};
pub use pairs::{read_pairs, Pair, IMAGE_EXTENSIONS};
pub use rng::SplitMix64;
pub use train::{
    fit, split_pairs, EpochReport, FeatureRows, FitEvent, FitOptions, FitReport, IndexedRows,
    PairFeatures, StepReport, Trainer,
};
