//! What every format's decoder shares: the request (pixel limit, EXIF orientation,
//! DCT-scaling target), the decoder's result and its errors. A leaf module, so that the
//! per-format decoders and the dispatcher in `decode` do not import each other.

use std::path::Path;

use image::metadata::Orientation;
use image::DynamicImage;

use crate::error::Error;

/// Why decoding failed (turned into an [`Error`] with the path).
#[derive(Debug)]
pub(crate) enum DecodeError {
    Empty,
    Unsupported(String),
    TooLarge { width: u32, height: u32, max: u64 },
    Truncated,
    Corrupt(String),
}

impl DecodeError {
    pub(crate) fn into_error(self, path: &Path) -> Error {
        let message = match self {
            DecodeError::TooLarge { width, height, max } => {
                return Error::ImageTooLarge {
                    path: path.to_path_buf(),
                    width,
                    height,
                    max_pixels: max,
                }
            }
            DecodeError::Empty => "the file is empty".to_string(),
            DecodeError::Unsupported(m) => m,
            DecodeError::Truncated => {
                "the file is truncated (it ends before the image data does)".into()
            }
            DecodeError::Corrupt(m) => m,
        };
        Error::ImageDecode {
            path: path.to_path_buf(),
            message,
        }
    }
}

/// The size an image of `(width, height)` will be resized to, as `(width, height)`.
pub(crate) type TargetFn<'a> = &'a dyn Fn(u32, u32) -> (u32, u32);

/// What a decoder needs to know besides the bytes.
pub(crate) struct DecodeRequest<'a> {
    pub max_pixels: u64,
    pub apply_exif_orientation: bool,
    /// For DCT-domain downscaling: maps the (oriented) image size to its resize target.
    /// `None`: decode at full size.
    pub target: Option<TargetFn<'a>>,
}

impl DecodeRequest<'_> {
    /// Refuses empty images and images over the pixel limit.
    pub fn check_size(&self, width: u32, height: u32) -> Result<(), DecodeError> {
        if width == 0 || height == 0 {
            return Err(DecodeError::Corrupt(format!(
                "image has no pixels ({width}x{height})"
            )));
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(DecodeError::TooLarge {
                width,
                height,
                max: self.max_pixels,
            });
        }
        Ok(())
    }

    /// The resize target of a `width × height` image as stored in the file, in the
    /// file's orientation (the target is computed on the image as it will be oriented).
    pub fn target_in_file_space(
        &self,
        width: u32,
        height: u32,
        orientation: Option<Orientation>,
    ) -> Option<(u32, u32)> {
        let target = self.target?;
        if swaps_axes(orientation) {
            let (tw, th) = target(height, width);
            Some((th, tw))
        } else {
            Some(target(width, height))
        }
    }
}

pub(crate) fn swaps_axes(orientation: Option<Orientation>) -> bool {
    matches!(
        orientation,
        Some(
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH
        )
    )
}

/// libjpeg's `scale_num` (over 8) for DCT-domain downscaling.
///
/// The largest reduction (1/8, 1/4, 1/2) that keeps the decoded image at least twice the
/// target on both axes, as Pillow's `thumbnail` drafts JPEGs (`reducing_gap=2.0`): the
/// resize filter then still does a real part of the reduction. Failing that, 1/2 when it
/// covers the target (the target is at most half the source). Otherwise 8: no scaling.
/// Measured (random-init ViT-B/32-like tower, `tests/jpeg_end_to_end.rs`): reducing to
/// exactly the target would take 12-megapixel photos to 1/8 at a cosine of 0.9996
/// against the full decode; with the gap, 1/4 at 0.99992, about 15 % slower.
pub(crate) fn scaled_numerator(width: u32, height: u32, target: (u32, u32)) -> u8 {
    let covers = |n: u32, gap: u64| {
        let scaled = |size: u32| (u64::from(size) * u64::from(n)).div_ceil(8);
        scaled(width) >= gap * u64::from(target.0) && scaled(height) >= gap * u64::from(target.1)
    };
    for n in [1u8, 2, 4] {
        if covers(u32::from(n), 2) {
            return n;
        }
    }
    if covers(4, 1) {
        return 4;
    }
    8
}

/// What a format's decoder returns.
pub(crate) struct RawDecoded {
    /// The pixels as stored (not oriented); reduced after DCT scaling.
    pub image: DynamicImage,
    /// `(width, height)` of the full-size image, as stored.
    pub full_size: (u32, u32),
    /// The EXIF orientation to apply, when asked for and present.
    pub orientation: Option<Orientation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_numerator_picks_the_largest_reduction_that_covers_the_target() {
        // 4000x3000 to 298x224: 1/8 would give 500x375, less than twice the target;
        // 1/4 gives 1000x750.
        assert_eq!(scaled_numerator(4000, 3000, (298, 224)), 2);
        assert_eq!(scaled_numerator(8000, 6000, (298, 224)), 1);
        // 1024x768 to 298x224: no reduction keeps twice the target, 1/2 (512x384) covers it.
        assert_eq!(scaled_numerator(1024, 768, (298, 224)), 4);
        // Target more than half the source: no scaling.
        assert_eq!(scaled_numerator(400, 300, (298, 224)), 8);
        // Exactly half: 1/2 (ceil(401 / 2) = 201 >= 201).
        assert_eq!(scaled_numerator(401, 300, (201, 150)), 4);
    }

    #[test]
    fn orientation_swaps_the_target() {
        let f = |w: u32, h: u32| (w / 2, h / 4);
        let r = DecodeRequest {
            max_pixels: 100,
            apply_exif_orientation: true,
            target: Some(&f),
        };
        // Stored 80x40, shown rotated as 40x80: target (20, 20) shown, (20, 20) stored.
        assert_eq!(
            r.target_in_file_space(80, 40, Some(Orientation::Rotate90)),
            Some((20, 20))
        );
        assert_eq!(r.target_in_file_space(80, 40, None), Some((40, 10)));
        assert!(r.check_size(10, 10).is_ok());
        assert!(matches!(
            r.check_size(11, 10),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(r.check_size(0, 10).is_err());
    }
}
