//! The bounds of the contract: how large a package's sizes may be and which constants
//! make sense. [`validate_manifest`](crate::validate_manifest) refuses a manifest outside
//! them, so that the runtime never allocates from an absurd size, never overflows a
//! product of sizes, and never turns a constant into infinite or NaN scores; the exporter
//! refuses to write such a package. Each bound is far from every real model (the reasons
//! are given per constant; `docs/package-format.md` lists them too).

/// Largest `image.height` or `image.width`, and largest side of a resize or crop: 16384
/// pixels. The largest vision towers take 1024 to 1536 pixels a side.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Largest `image.height × image.width` (and largest exact resize): 2²⁶ pixels (8192 ×
/// 8192), whose `pixel_values` take 768 MiB per image.
pub const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// Largest `projection_dim` and graph `output_dim`: 65536. Real towers have 2048 at most.
pub const MAX_FEATURE_DIM: usize = 65_536;

/// Largest `text.max_length`: 65536 tokens. Real text towers take 77 to 8192.
pub const MAX_SEQUENCE_LENGTH: usize = 65_536;

/// Largest `exp(logit_scale)`: 1000. CLIP's training clamps it to 100 (OpenCLIP's
/// `clamp(logit_scale, 0, ln 100)`); 1000 leaves room for checkpoints trained without the
/// clamp, and keeps every logit (at most this in magnitude, as embeddings are
/// normalized) and its softmax far from f32 overflow, which starts at `logit_scale`
/// 88.72.
pub const MAX_LOGIT_SCALE_EXP: f32 = 1000.0;

/// Smallest `exp(logit_scale)`: 1/1000, the mirror of [`MAX_LOGIT_SCALE_EXP`]. Below it
/// every probability is uniform within f32 rounding: the scores say nothing.
pub const MIN_LOGIT_SCALE_EXP: f32 = 0.001;

/// Largest `image.rescale_factor`: 1 (pixel values 0..=255 are scaled down, never up;
/// transformers' processors use 1/255 or 1/127.5). It must also be above 0.
pub const MAX_RESCALE_FACTOR: f32 = 1.0;

/// Largest magnitude of a `image.normalize.mean` value: 255, the largest pixel value
/// (means are given in the units of the rescaled pixels: 0.48 with rescaling, 123.7
/// without).
pub const MAX_ABS_MEAN: f32 = 255.0;

/// Smallest `image.normalize.std` value: 0.001. Real values are 0.26 to 0.5 (or 58 to
/// 128 in the units of unscaled pixels); a tiny std turns pixel values into huge ones.
pub const MIN_STD: f32 = 0.001;

/// Largest `image.normalize.std` value: 255, the largest pixel value.
pub const MAX_STD: f32 = 255.0;
