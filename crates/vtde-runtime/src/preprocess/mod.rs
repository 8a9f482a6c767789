//! Input preprocessing: image files to decoded images ([`decode`]; JPEG by libjpeg-turbo),
//! images to `pixel_values` ([`image`], [`resample`]) and texts to token arrays
//! ([`text`]), all driven by the package manifest and matching transformers with PIL.

pub mod decode;
pub mod image;
mod jpeg;
pub mod resample;
pub mod text;

pub use self::decode::{decode_image_bytes, read_image, ImageOptions, DEFAULT_MAX_PIXELS};
pub use self::image::{load_image, to_rgb8, ImagePreprocessor, PreprocessedFiles};
pub use self::text::{TextBatch, TextTokenizer};
