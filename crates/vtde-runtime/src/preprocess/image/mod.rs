//! Images, from file bytes to `pixel_values`, exactly as PIL and transformers' PIL-backend
//! image processors make them.
//!
//! - [`decode`]: file → pixels (format from the content; JPEG by libjpeg-turbo, bit-exact
//!   with PIL; TIFF, GIF and the rest per format), size limits, EXIF orientation;
//! - [`colour`]: pixels → 8-bit RGB as `convert_to_rgb` does;
//! - [`resample`]: Pillow's `Image.resize`, bit for bit;
//! - [`processor`]: resize, center crop, rescale and normalize into the NCHW batch.

pub(crate) mod colour;
pub(crate) mod decode;
pub(crate) mod processor;
pub(crate) mod resample;

pub use self::colour::to_rgb8;
pub use self::decode::{decode_image, read_image, ImageOptions, DEFAULT_MAX_PIXELS};
pub use self::processor::ImagePreprocessor;
