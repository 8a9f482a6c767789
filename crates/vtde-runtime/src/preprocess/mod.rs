//! Input preprocessing: images to `pixel_values` ([`image`]) and texts to token arrays
//! ([`text`]), both driven by the package manifest and matching transformers.

pub mod image;
pub mod resample;
pub mod text;

pub use self::image::{load_image, to_rgb8, ImagePreprocessor};
pub use self::text::{TextBatch, TextTokenizer};
