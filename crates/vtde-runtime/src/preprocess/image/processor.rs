//! Images to `pixel_values`, as transformers' PIL-backend image processors make them.
//!
//! Files are decoded by [`super::decode`] (libjpeg-turbo for JPEG, bit-exact with PIL;
//! limits; EXIF orientation on request). [`ImagePreprocessor::preprocess_file`] decodes
//! and preprocesses one file into a row of a batch; the streaming pipeline
//! ([`crate::pipeline`]) runs it on a pool of threads, one image per task.
//!
//! The steps and their order follow transformers 5.24 (`PilBackend` in
//! `image_processing_backends.py` and `image_transforms.py`):
//!
//! 1. **Convert to RGB** ([`to_rgb8`](super::colour::to_rgb8)) as `image_transforms.convert_to_rgb` does for a PIL
//!    image: an image with an alpha channel (or PNG transparency, which the decoder turns
//!    into alpha) is composited onto an opaque white background with PIL's
//!    `alpha_composite` integer arithmetic; otherwise `convert("RGB")`. The `image`
//!    crate's 16-bit images are mapped as PIL opens and converts the same files: 16-bit
//!    RGB(A) and grey+alpha keep the high byte, 16-bit grey (PIL's `I;16`) is clamped to
//!    255. Images that are not RGB are converted even when the manifest's `convert_rgb`
//!    is false, since the graph takes 3 channels (transformers would fail on them).
//! 2. **Resize** the 8-bit image with Pillow's own algorithm, bit for bit
//!    ([`resample`]). The target size comes from
//!    [`resize_output_size`], which rounds as
//!    `get_resize_output_image_size(default_to_square=False)` does. A resize to the
//!    image's own size is skipped, as PIL returns a copy then.
//! 3. **Center crop** with transformers' offsets `(size - crop) // 2`, padding with zeros
//!    where the image is smaller than the crop ([`crop_offset`]).
//! 4. **Rescale and normalize** in the dtypes numpy uses: `(u8 as f64 * factor) as f32`,
//!    then `(x - mean) / std` in f32. An 8-bit channel has only 256 values, so both steps
//!    are a per-channel lookup table computed once, and the result is written straight
//!    into the NCHW f32 batch.

use std::path::Path;

use image::{DynamicImage, RgbImage};
use ndarray::{Array4, ArrayViewMut3};

use super::colour::to_rgb8;
use super::decode::{self, ImageOptions};
use super::resample::{self, Window};
use crate::error::{Error, Result};
use crate::manifest::{ImagePreprocess, ResizeRule, Size};

/// Largest image (in pixels) that a resize may produce. Beyond it the request is refused
/// rather than allocating gigabytes (e.g. a 1×100000 image resized to shortest edge 224).
pub const MAX_RESIZED_PIXELS: u64 = 1 << 28;

/// The `(height, width)` a resize rule gives an image of `height × width`, rounded as
/// transformers rounds it.
///
/// `ShortestEdge` is `get_resize_output_image_size(default_to_square=False)`: the short
/// side becomes `shortest_edge` and the long side `int(shortest_edge * long / short)`
/// (Python's true division, then truncation); a square image stays square.
pub fn resize_output_size(height: u32, width: u32, rule: ResizeRule) -> (u32, u32) {
    match rule {
        ResizeRule::Exact { height, width } => (height, width),
        ResizeRule::ShortestEdge { shortest_edge } => {
            let (short, long) = if width <= height {
                (width, height)
            } else {
                (height, width)
            };
            if short == 0 {
                return (0, 0);
            }
            // Python computes `size * long` exactly as an int and then divides two
            // integers with correct rounding; both fit f64 exactly here.
            let product = u64::from(shortest_edge) * u64::from(long);
            let new_long = (product as f64 / f64::from(short)).floor();
            let new_long = if new_long >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                new_long as u32
            };
            if width <= height {
                (new_long, shortest_edge)
            } else {
                (shortest_edge, new_long)
            }
        }
    }
}

/// Where a center crop of `crop` starts in an image side of `size`: transformers'
/// `(size - crop) // 2` when the image is large enough, otherwise minus the zero padding
/// it adds before (`ceil((crop - size) / 2)`). Output index `i` reads source index
/// `i + offset`; sources outside `0..size` are zero padding.
pub fn crop_offset(size: u32, crop: u32) -> i64 {
    let (size, crop) = (i64::from(size), i64::from(crop));
    if size >= crop {
        (size - crop) / 2
    } else {
        -((crop - size + 1) / 2)
    }
}

/// Turns decoded images into `pixel_values` following a manifest's [`ImagePreprocess`].
#[derive(Debug, Clone)]
pub struct ImagePreprocessor {
    config: ImagePreprocess,
    /// `lut[c][v]`: the final f32 value of channel `c` for 8-bit value `v`.
    lut: Box<[[f32; 256]; 3]>,
}

impl ImagePreprocessor {
    /// A preprocessor for the manifest's image settings.
    pub fn new(config: &ImagePreprocess) -> Self {
        // The manifest stores the factor as f32; transformers multiplies by the Python
        // float (f64). For the ubiquitous 1/255 use the exact f64 so that results match
        // bit for bit; other factors are widened as stored.
        let factor = config.rescale_factor.map(|f| {
            if f == (1.0f64 / 255.0) as f32 {
                1.0f64 / 255.0
            } else {
                f64::from(f)
            }
        });
        let mut lut = Box::new([[0f32; 256]; 3]);
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                // numpy: `image.astype(float64) * scale` then `.astype(float32)`.
                let x = match factor {
                    Some(f) => (v as f64 * f) as f32,
                    None => v as f32,
                };
                // numpy: `(image - mean) / std` with float32 arrays.
                *out = match &config.normalize {
                    Some(n) => (x - n.mean[c]) / n.std[c],
                    None => x,
                };
            }
        }
        ImagePreprocessor {
            config: config.clone(),
            lut,
        }
    }

    /// The settings this preprocessor follows.
    pub fn config(&self) -> &ImagePreprocess {
        &self.config
    }

    /// The `(height, width)` of the `pixel_values` it produces.
    pub fn output_size(&self) -> (u32, u32) {
        (self.config.height, self.config.width)
    }

    /// Preprocesses a batch into a `[n, 3, height, width]` array.
    pub fn preprocess_batch(&self, images: &[DynamicImage]) -> Result<Array4<f32>> {
        let (h, w) = self.output_size();
        let mut out = Array4::<f32>::zeros((images.len(), 3, h as usize, w as usize));
        for (i, (image, slot)) in images.iter().zip(out.outer_iter_mut()).enumerate() {
            self.preprocess_into(image, slot)
                .map_err(|message| Error::ImagePreprocess { index: i, message })?;
        }
        Ok(out)
    }

    /// Preprocesses one image into `out`, a `[3, height, width]` view (for example one
    /// item of a batch). Lets callers preprocess the items of a batch on several threads.
    pub fn preprocess_into(
        &self,
        image: &DynamicImage,
        out: ArrayViewMut3<'_, f32>,
    ) -> std::result::Result<(), String> {
        if image.width() == 0 || image.height() == 0 {
            return Err(format!(
                "image has no pixels ({}x{})",
                image.width(),
                image.height()
            ));
        }
        let rgb = to_rgb8(image);
        let logical = (rgb.height(), rgb.width());
        self.preprocess_rgb(&rgb, logical, out)
    }

    /// The `(width, height)` a `width × height` image is resized to (its own size when
    /// the preprocessing does not resize).
    pub fn resize_target(&self, width: u32, height: u32) -> (u32, u32) {
        match &self.config.resize {
            Some(r) => {
                let (h, w) = resize_output_size(height, width, r.rule);
                (w, h)
            }
            None => (width, height),
        }
    }

    /// Reads, decodes and preprocesses one image file into `out`, a `[3, height, width]`
    /// view, with the given options (pixel limit, EXIF orientation, JPEG DCT scaling).
    /// Errors name the file: [`Error::ImageDecode`], [`Error::ImageTooLarge`] or
    /// [`Error::ImagePreprocessFile`].
    pub fn preprocess_file(
        &self,
        path: &Path,
        options: &ImageOptions,
        out: ArrayViewMut3<'_, f32>,
    ) -> Result<()> {
        let target = |w: u32, h: u32| self.resize_target(w, h);
        let decoded = decode::decode_file(path, options, Some(&target), decode::take_scratch())?;
        let (lw, lh) = decoded.logical_size;
        let result = {
            let rgb = to_rgb8(&decoded.image);
            self.preprocess_rgb(&rgb, (lh, lw), out)
        };
        // The pixels are no longer needed: the next image on this thread reuses them.
        decode::recycle(decoded.image);
        result.map_err(|message| Error::ImagePreprocessFile {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Preprocesses 8-bit RGB pixels of an image whose full size is `logical`
    /// (`(height, width)`). The pixels are that image, or (after DCT-domain scaling) a
    /// reduced copy of it; sizes are computed from the full size, as PIL would see it.
    fn preprocess_rgb(
        &self,
        rgb: &RgbImage,
        logical: (u32, u32),
        mut out: ArrayViewMut3<'_, f32>,
    ) -> std::result::Result<(), String> {
        let (h, w) = self.output_size();
        let expected = [3, h as usize, w as usize];
        if out.shape() != expected {
            return Err(format!(
                "output slot has shape {:?}, expected {expected:?}",
                out.shape()
            ));
        }
        let (src_h, src_w) = (rgb.height(), rgb.width());
        let (log_h, log_w) = logical;
        if src_h == 0 || src_w == 0 || log_h == 0 || log_w == 0 {
            return Err(format!("image has no pixels ({src_w}x{src_h})"));
        }
        let resize = self
            .config
            .resize
            .as_ref()
            .map(|r| (resize_output_size(log_h, log_w, r.rule), r.filter))
            .filter(|&(size, _)| size != (src_h, src_w));
        if resize.is_none() && (src_h, src_w) != logical {
            return Err("a reduced image needs a resize step".into());
        }
        let (rh, rw) = resize.map_or((src_h, src_w), |(size, _)| size);
        if rh == 0 || rw == 0 || u64::from(rh) * u64::from(rw) > MAX_RESIZED_PIXELS {
            return Err(format!(
                "resizing a {src_w}x{src_h} image gives {rw}x{rh}, outside 1..={MAX_RESIZED_PIXELS} pixels"
            ));
        }
        let crop = self.config.center_crop.unwrap_or(Size {
            height: rh,
            width: rw,
        });
        if (crop.height, crop.width) != (h, w) {
            return Err(format!(
                "preprocessing gives a {}x{} image, but the vision graph takes {w}x{h}",
                crop.width, crop.height
            ));
        }
        let top = crop_offset(rh, crop.height);
        let left = crop_offset(rw, crop.width);
        match resize {
            Some((_, filter)) => {
                // Resize only the part of the image the crop keeps (exactly the same
                // pixels as resizing all and cropping; see `resample`).
                let win = Window {
                    x0: left.max(0) as usize,
                    y0: top.max(0) as usize,
                    x1: (left + i64::from(crop.width)).min(i64::from(rw)) as usize,
                    y1: (top + i64::from(crop.height)).min(i64::from(rh)) as usize,
                };
                let pixels = resample::resize_rgb_window(
                    rgb.as_raw(),
                    src_w as usize,
                    src_h as usize,
                    rw as usize,
                    rh as usize,
                    filter,
                    win,
                )
                .ok_or_else(|| format!("cannot resize a {src_w}x{src_h} image to {rw}x{rh}"))?;
                let plane = Plane {
                    pixels: &pixels,
                    width: win.width(),
                    height: win.height(),
                };
                self.write_planes(plane, top - win.y0 as i64, left - win.x0 as i64, &mut out);
            }
            None => {
                let plane = Plane {
                    pixels: rgb.as_raw(),
                    width: src_w as usize,
                    height: src_h as usize,
                };
                self.write_planes(plane, top, left, &mut out);
            }
        }
        Ok(())
    }

    /// Crops (with zero padding) and normalizes `src` into the three planes of `out`:
    /// output pixel `(y, x)` reads source pixel `(y + top, x + left)`, or is padding.
    fn write_planes(&self, src: Plane<'_>, top: i64, left: i64, out: &mut ArrayViewMut3<'_, f32>) {
        let (h, w) = (out.shape()[1], out.shape()[2]);
        let (src_h, src_w) = (src.height as i64, src.width as i64);
        let stride = src.width * 3;
        // Columns of the output that read real pixels; the rest are zero padding.
        let x0 = (-left).clamp(0, w as i64) as usize;
        let x1 = (src_w - left).clamp(x0 as i64, w as i64) as usize;
        let pad = [self.lut[0][0], self.lut[1][0], self.lut[2][0]];
        for y in 0..h {
            let sy = y as i64 + top;
            for c in 0..3 {
                let mut row = out.slice_mut(ndarray::s![c, y, ..]);
                if sy < 0 || sy >= src_h {
                    row.fill(pad[c]);
                    continue;
                }
                let src_row = &src.pixels[sy as usize * stride..(sy as usize + 1) * stride];
                let lut = &self.lut[c];
                for (x, v) in row.iter_mut().enumerate() {
                    *v = if x >= x0 && x < x1 {
                        let sx = (x as i64 + left) as usize;
                        lut[src_row[sx * 3 + c] as usize]
                    } else {
                        pad[c]
                    };
                }
            }
        }
    }
}

/// Packed 8-bit RGB pixels, `width × height`.
#[derive(Clone, Copy)]
struct Plane<'a> {
    pixels: &'a [u8],
    width: usize,
    height: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Normalize, ResampleFilter, Resize};
    use image::{GrayImage, Luma, Rgb};

    #[test]
    fn shortest_edge_rounding() {
        let rule = ResizeRule::ShortestEdge { shortest_edge: 224 };
        // 1024x768 (w x h): h is short; long = int(224 * 1024 / 768) = 298.
        assert_eq!(resize_output_size(768, 1024, rule), (224, 298));
        assert_eq!(resize_output_size(1024, 768, rule), (298, 224));
        assert_eq!(resize_output_size(500, 500, rule), (224, 224));
        // int(224 * 333 / 500) = int(149.184): truncation, not rounding.
        assert_eq!(
            resize_output_size(333, 500, ResizeRule::ShortestEdge { shortest_edge: 500 }),
            (500, 750)
        );
        assert_eq!(resize_output_size(500, 333, rule), (336, 224));
        // 224 * 299 / 200 = 334.88 -> 334.
        assert_eq!(resize_output_size(299, 200, rule), (334, 224));
        assert_eq!(
            resize_output_size(
                7,
                9,
                ResizeRule::Exact {
                    height: 3,
                    width: 4
                }
            ),
            (3, 4)
        );
    }

    #[test]
    fn crop_offsets_like_transformers() {
        assert_eq!(crop_offset(298, 224), 37);
        assert_eq!(crop_offset(299, 224), 37); // floor division
        assert_eq!(crop_offset(224, 224), 0);
        // Smaller than the crop: padded by ceil((224 - 221) / 2) = 2 before.
        assert_eq!(crop_offset(221, 224), -2);
        assert_eq!(crop_offset(222, 224), -1);
    }

    fn config(resize: Option<Resize>, crop: Option<Size>, h: u32, w: u32) -> ImagePreprocess {
        ImagePreprocess {
            height: h,
            width: w,
            convert_rgb: true,
            resize,
            center_crop: crop,
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some(Normalize {
                mean: [0.5, 0.25, 0.0],
                std: [0.5, 0.5, 1.0],
            }),
        }
    }

    #[test]
    fn normalization_matches_numpy_order() {
        let p = ImagePreprocessor::new(&config(None, None, 1, 1));
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([255, 51, 0])));
        let out = p.preprocess_batch(&[img]).unwrap();
        let r = ((255.0f64 / 255.0) as f32 - 0.5) / 0.5;
        let g = ((51.0f64 * (1.0 / 255.0)) as f32 - 0.25) / 0.5;
        assert_eq!(out[[0, 0, 0, 0]], r);
        assert_eq!(out[[0, 1, 0, 0]], g);
        assert_eq!(out[[0, 2, 0, 0]], 0.0);
    }

    #[test]
    fn crop_with_padding_uses_normalized_zero() {
        // A 2x2 image, no resize, center crop 4x4: one padded row/column on each side.
        let p = ImagePreprocessor::new(&config(
            None,
            Some(Size {
                height: 4,
                width: 4,
            }),
            4,
            4,
        ));
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, Rgb([255, 255, 255])));
        let out = p.preprocess_batch(&[img]).unwrap();
        let pad_r = (0.0 - 0.5) / 0.5;
        assert_eq!(out[[0, 0, 0, 0]], pad_r);
        assert_eq!(out[[0, 0, 1, 1]], 1.0);
        assert_eq!(out[[0, 0, 2, 2]], 1.0);
        assert_eq!(out[[0, 0, 3, 3]], pad_r);
        assert_eq!(out[[0, 0, 1, 3]], pad_r);
    }

    #[test]
    fn crop_picks_the_center() {
        // 5 wide, crop 2: offset (5 - 2) // 2 = 1, so columns 1 and 2.
        let mut img = RgbImage::new(5, 1);
        for x in 0..5 {
            img.put_pixel(x, 0, Rgb([x as u8 * 10, 0, 0]));
        }
        let mut cfg = config(
            None,
            Some(Size {
                height: 1,
                width: 2,
            }),
            1,
            2,
        );
        cfg.rescale_factor = None;
        cfg.normalize = None;
        let p = ImagePreprocessor::new(&cfg);
        let out = p.preprocess_batch(&[DynamicImage::ImageRgb8(img)]).unwrap();
        assert_eq!(out[[0, 0, 0, 0]], 10.0);
        assert_eq!(out[[0, 0, 0, 1]], 20.0);
    }

    #[test]
    fn resize_then_crop_shape() {
        let cfg = config(
            Some(Resize {
                rule: ResizeRule::ShortestEdge { shortest_edge: 8 },
                filter: ResampleFilter::Bicubic,
            }),
            Some(Size {
                height: 8,
                width: 8,
            }),
            8,
            8,
        );
        let p = ImagePreprocessor::new(&cfg);
        let imgs = vec![
            DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 30, Rgb([9, 9, 9]))),
            DynamicImage::ImageLuma8(GrayImage::from_pixel(3, 50, Luma([200]))),
        ];
        let out = p.preprocess_batch(&imgs).unwrap();
        assert_eq!(out.shape(), &[2, 3, 8, 8]);
        // A constant image stays constant through any of PIL's filters.
        let v = ((9.0f64 / 255.0) as f32 - 0.5) / 0.5;
        assert!(out.slice(ndarray::s![0, 0, .., ..]).iter().all(|&x| x == v));
    }

    #[test]
    fn empty_image_is_an_error_not_a_panic() {
        let p = ImagePreprocessor::new(&config(None, None, 1, 1));
        let img = DynamicImage::ImageRgb8(RgbImage::new(0, 0));
        let err = p.preprocess_batch(&[img]).unwrap_err();
        assert!(
            matches!(err, Error::ImagePreprocess { index: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn wrong_final_size_is_an_error() {
        // No crop, shortest-edge resize: a non-square image cannot fit an 8x8 graph.
        let cfg = config(
            Some(Resize {
                rule: ResizeRule::ShortestEdge { shortest_edge: 8 },
                filter: ResampleFilter::Bilinear,
            }),
            None,
            8,
            8,
        );
        let p = ImagePreprocessor::new(&cfg);
        let img = DynamicImage::ImageRgb8(RgbImage::new(20, 10));
        assert!(p.preprocess_batch(&[img]).is_err());
    }

    #[test]
    fn huge_resize_is_refused() {
        let cfg = config(
            Some(Resize {
                rule: ResizeRule::ShortestEdge { shortest_edge: 224 },
                filter: ResampleFilter::Bilinear,
            }),
            Some(Size {
                height: 224,
                width: 224,
            }),
            224,
            224,
        );
        let p = ImagePreprocessor::new(&cfg);
        let img = DynamicImage::ImageRgb8(RgbImage::new(60_000, 1));
        assert!(p.preprocess_batch(&[img]).is_err());
    }
}
