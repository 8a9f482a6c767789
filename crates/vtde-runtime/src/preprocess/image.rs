//! Images to `pixel_values`, as transformers' PIL-backend image processors make them.
//!
//! Files are decoded by [`super::decode`] (libjpeg-turbo for JPEG, bit-exact with PIL;
//! limits; EXIF orientation on request). [`ImagePreprocessor::preprocess_file`] decodes
//! and preprocesses one file into a row of a batch, [`ImagePreprocessor::preprocess_files`]
//! a batch of files on a pool of threads, one image per task.
//!
//! The steps and their order follow transformers 5.24 (`PilBackend` in
//! `image_processing_backends.py` and `image_transforms.py`):
//!
//! 1. **Convert to RGB** ([`to_rgb8`]) as `image_transforms.convert_to_rgb` does for a PIL
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

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use image::{DynamicImage, ImageBuffer, RgbImage};
use ndarray::{Array4, ArrayViewMut3, Axis};

use super::decode::{self, ImageOptions};
use super::resample::{self, Window};
use crate::error::{Error, Result};
use crate::manifest::{ImagePreprocess, ResampleFilter, ResizeRule, Size};

/// Largest image (in pixels) that a resize may produce. Beyond it the request is refused
/// rather than allocating gigabytes (e.g. a 1×100000 image resized to shortest edge 224).
pub const MAX_RESIZED_PIXELS: u64 = 1 << 28;

/// Largest decoded image side this crate used to accept. No longer enforced: the
/// decoding limit is a pixel count ([`ImageOptions::max_pixels`]).
pub const MAX_DECODED_SIDE: u32 = 65_535;

/// Largest allocation a decoder could make before the limit became a pixel count
/// ([`ImageOptions::max_pixels`]); no longer used.
pub const MAX_DECODE_ALLOC: u64 = 1 << 30;

/// Opens and decodes an image file, as `PIL.Image.open` does: EXIF orientation is not
/// applied, and the default pixel limit holds. The format is detected from the file's
/// content, not its extension; for animated formats the first frame is returned. See
/// [`read_image`](super::decode::read_image) for the options, and
/// [`super::decode`] for the details.
pub fn load_image(path: &Path) -> Result<DynamicImage> {
    super::decode::read_image(path, &ImageOptions::default())
}

/// PIL's `alpha_composite(white, rgba)` for one channel: Pillow's integer arithmetic
/// (`AlphaComposite.c`, 7 extra bits of precision, rounded divisions by 255) with an
/// opaque white destination.
#[inline]
fn composite_on_white(c: u8, a: u8) -> u8 {
    if a == 0 {
        return 255;
    }
    const PRECISION_BITS: u32 = 7;
    let (c, a) = (u32::from(c), u32::from(a));
    // dst alpha is 255: blend = 255 * (255 - a), outa255 = a * 255 + blend = 255 * 255.
    let outa255 = 255 * 255;
    let coef1 = a * 255 * 255 * (1 << PRECISION_BITS) / outa255;
    let coef2 = 255 * (1 << PRECISION_BITS) - coef1;
    let tmp = c * coef1 + 255 * coef2 + (0x80 << PRECISION_BITS);
    // SHIFTFORDIV255(a) = ((a >> 8) + a) >> 8
    let v = (((tmp >> 8) + tmp) >> 8) >> PRECISION_BITS;
    // v <= 255 for all inputs (checked exhaustively in the tests); min guards the cast.
    v.min(255) as u8
}

/// A 256 × 256 table of [`composite_on_white`], so that compositing is a lookup.
fn composite_table() -> &'static [[u8; 256]; 256] {
    static TABLE: std::sync::OnceLock<Box<[[u8; 256]; 256]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([[0u8; 256]; 256]);
        for (a, row) in t.iter_mut().enumerate() {
            for (c, out) in row.iter_mut().enumerate() {
                *out = composite_on_white(c as u8, a as u8);
            }
        }
        t
    })
}

fn rgb_from_fn(w: u32, h: u32, src: &[u8], ch: usize, f: impl Fn(&[u8]) -> [u8; 3]) -> RgbImage {
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    for px in src.chunks_exact(ch) {
        out.extend_from_slice(&f(px));
    }
    // The buffer has exactly w*h*3 bytes since `src` has w*h pixels of `ch` values.
    ImageBuffer::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

fn rgb16_from_fn(
    w: u32,
    h: u32,
    src: &[u16],
    ch: usize,
    f: impl Fn(&[u16]) -> [u8; 3],
) -> RgbImage {
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    for px in src.chunks_exact(ch) {
        out.extend_from_slice(&f(px));
    }
    ImageBuffer::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

/// Converts an image to 8-bit RGB as transformers' `convert_to_rgb` does with PIL (see
/// the module documentation). An 8-bit RGB image is borrowed, not copied.
pub fn to_rgb8(image: &DynamicImage) -> Cow<'_, RgbImage> {
    let (w, h) = (image.width(), image.height());
    let t = composite_table();
    let hi = |v: u16| (v >> 8) as u8;
    match image {
        DynamicImage::ImageRgb8(img) => Cow::Borrowed(img),
        DynamicImage::ImageLuma8(img) => {
            Cow::Owned(rgb_from_fn(w, h, img.as_raw(), 1, |p| [p[0], p[0], p[0]]))
        }
        DynamicImage::ImageLumaA8(img) => Cow::Owned(rgb_from_fn(w, h, img.as_raw(), 2, |p| {
            let v = t[p[1] as usize][p[0] as usize];
            [v, v, v]
        })),
        DynamicImage::ImageRgba8(img) => Cow::Owned(rgb_from_fn(w, h, img.as_raw(), 4, |p| {
            let row = &t[p[3] as usize];
            [row[p[0] as usize], row[p[1] as usize], row[p[2] as usize]]
        })),
        // PIL opens 16-bit grey as `I;16`; its conversion to RGB clamps at 255.
        DynamicImage::ImageLuma16(img) => Cow::Owned(rgb16_from_fn(w, h, img.as_raw(), 1, |p| {
            let v = p[0].min(255) as u8;
            [v, v, v]
        })),
        // PIL reads 16-bit grey+alpha, RGB and RGBA PNGs as 8-bit modes keeping the
        // high byte of each sample.
        DynamicImage::ImageLumaA16(img) => Cow::Owned(rgb16_from_fn(w, h, img.as_raw(), 2, |p| {
            let v = t[hi(p[1]) as usize][hi(p[0]) as usize];
            [v, v, v]
        })),
        DynamicImage::ImageRgb16(img) => Cow::Owned(rgb16_from_fn(w, h, img.as_raw(), 3, |p| {
            [hi(p[0]), hi(p[1]), hi(p[2])]
        })),
        DynamicImage::ImageRgba16(img) => Cow::Owned(rgb16_from_fn(w, h, img.as_raw(), 4, |p| {
            let row = &t[hi(p[3]) as usize];
            [
                row[hi(p[0]) as usize],
                row[hi(p[1]) as usize],
                row[hi(p[2]) as usize],
            ]
        })),
        // No PIL counterpart (PIL cannot open float RGB images): the image crate's
        // clamped conversion, composited like the other alpha images.
        DynamicImage::ImageRgb32F(_) => Cow::Owned(image.to_rgb8()),
        _ => {
            let rgba = image.to_rgba8();
            Cow::Owned(rgb_from_fn(w, h, rgba.as_raw(), 4, |p| {
                let row = &t[p[3] as usize];
                [row[p[0] as usize], row[p[1] as usize], row[p[2] as usize]]
            }))
        }
    }
}

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

/// Resizes an 8-bit RGB image exactly as Pillow's `Image.resize` does (see
/// [`resample`]). Returns the image itself when the size does not
/// change, as Pillow returns a copy then.
pub fn resize_rgb8<'a>(
    image: Cow<'a, RgbImage>,
    height: u32,
    width: u32,
    filter: ResampleFilter,
) -> std::result::Result<Cow<'a, RgbImage>, String> {
    if image.width() == width && image.height() == height {
        return Ok(image);
    }
    if height == 0 || width == 0 {
        return Err(format!("cannot resize to {width}x{height}"));
    }
    if u64::from(height) * u64::from(width) > MAX_RESIZED_PIXELS {
        return Err(format!(
            "resizing to {width}x{height} would exceed {MAX_RESIZED_PIXELS} pixels"
        ));
    }
    let out = resample::resize_rgb(
        image.as_raw(),
        image.width() as usize,
        image.height() as usize,
        width as usize,
        height as usize,
        filter,
    )
    .ok_or_else(|| format!("cannot resize a {}x{} image", image.width(), image.height()))?;
    ImageBuffer::from_raw(width, height, out)
        .map(Cow::Owned)
        .ok_or_else(|| "resize produced a buffer of the wrong size".to_string())
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

    /// Reads, decodes and preprocesses image files on `options.threads` threads, one
    /// image per task, each written straight into its row of the result.
    ///
    /// Memory is bounded by the batch: the `[n, 3, H, W]` output plus one decoded image
    /// per thread. Callers with many files pass them in chunks (their inference batch).
    /// A file that fails does not stop the others: its outcome holds the error, and its
    /// row is left out of `pixel_values`.
    pub fn preprocess_files<P: AsRef<Path> + Sync>(
        &self,
        paths: &[P],
        options: &ImageOptions,
    ) -> PreprocessedFiles {
        let n = paths.len();
        let (h, w) = self.output_size();
        let mut pixels = Array4::<f32>::zeros((n, 3, h as usize, w as usize));
        let mut results: Vec<Option<Result<()>>> = (0..n).map(|_| None).collect();
        let one = |i: usize, slot: ArrayViewMut3<'_, f32>| -> Result<()> {
            let path = paths[i].as_ref();
            // A decoder or resize panic must not take the batch down.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.preprocess_file(path, options, slot)
            }))
            .unwrap_or_else(|_| {
                Err(Error::ImageDecode {
                    path: path.to_path_buf(),
                    message: "decoding or preprocessing panicked on this file".into(),
                })
            })
        };
        let threads = options.thread_count().min(n);
        if threads <= 1 {
            for ((i, slot), result) in pixels.outer_iter_mut().enumerate().zip(&mut results) {
                *result = Some(one(i, slot));
            }
        } else {
            // Each slot (its output row and result) is locked only by the one worker that
            // took its index, so the locks never contend; they make the hand-over safe.
            let slots: Vec<_> = pixels
                .outer_iter_mut()
                .zip(results.iter_mut())
                .map(Mutex::new)
                .collect();
            let next = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(slot) = slots.get(i) else { break };
                        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                        let (view, result) = &mut *slot;
                        **result = Some(one(i, view.view_mut()));
                    });
                }
            });
        }
        let mut outcomes = Vec::with_capacity(n);
        let mut keep = Vec::with_capacity(n);
        for (i, result) in results.into_iter().enumerate() {
            let result = result.unwrap_or_else(|| {
                Err(Error::ImageDecode {
                    path: paths[i].as_ref().to_path_buf(),
                    message: "the image was not processed".into(),
                })
            });
            outcomes.push(result.map(|()| {
                keep.push(i);
                keep.len() - 1
            }));
        }
        let pixel_values = if keep.len() == n {
            pixels
        } else {
            pixels.select(Axis(0), &keep)
        };
        PreprocessedFiles {
            pixel_values,
            outcomes,
        }
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

/// What [`ImagePreprocessor::preprocess_files`] returns.
#[derive(Debug)]
pub struct PreprocessedFiles {
    /// `[k, 3, H, W]`: the files that succeeded, in input order.
    pub pixel_values: Array4<f32>,
    /// One entry per input path, in order: `Ok(row)`, its row in `pixel_values`, or the
    /// reason it failed.
    pub outcomes: Vec<Result<usize>>,
}

impl PreprocessedFiles {
    /// The number of files that succeeded (rows of `pixel_values`).
    pub fn succeeded(&self) -> usize {
        self.pixel_values.shape()[0]
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
    use crate::manifest::{Normalize, Resize};
    use image::{GrayAlphaImage, GrayImage, ImageBuffer, Luma, LumaA, Rgb, Rgba, RgbaImage};

    #[test]
    fn composite_matches_pillow_edge_cases() {
        // Opaque pixels are unchanged, transparent ones become white.
        for c in 0..=255u8 {
            assert_eq!(composite_on_white(c, 255), c);
            assert_eq!(composite_on_white(c, 0), 255);
        }
        // Values checked with Pillow 13 `alpha_composite` on a white background.
        assert_eq!(composite_on_white(0, 128), 127);
        assert_eq!(composite_on_white(0, 1), 254);
        assert_eq!(composite_on_white(100, 200), 133);
    }

    #[test]
    fn rgb_conversion_modes() {
        let gray = DynamicImage::ImageLuma8(GrayImage::from_pixel(2, 1, Luma([7])));
        assert_eq!(to_rgb8(&gray).get_pixel(1, 0).0, [7, 7, 7]);

        let rgba = DynamicImage::ImageRgba8(RgbaImage::from_pixel(1, 1, Rgba([10, 20, 30, 255])));
        assert_eq!(to_rgb8(&rgba).get_pixel(0, 0).0, [10, 20, 30]);
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(1, 1, Rgba([10, 20, 30, 0])));
        assert_eq!(to_rgb8(&clear).get_pixel(0, 0).0, [255, 255, 255]);

        let la = DynamicImage::ImageLumaA8(GrayAlphaImage::from_pixel(1, 1, LumaA([0, 128])));
        assert_eq!(to_rgb8(&la).get_pixel(0, 0).0, [127, 127, 127]);

        let g16 =
            DynamicImage::ImageLuma16(ImageBuffer::from_raw(3, 1, vec![5u16, 255, 256]).unwrap());
        let c = to_rgb8(&g16);
        assert_eq!(c.as_raw(), &[5, 5, 5, 255, 255, 255, 255, 255, 255]);

        let rgb16 = DynamicImage::ImageRgb16(
            ImageBuffer::from_raw(1, 1, vec![0x12ffu16, 0x00ff, 0xffff]).unwrap(),
        );
        assert_eq!(to_rgb8(&rgb16).as_raw(), &[0x12, 0x00, 0xff]);

        let rgba16 = DynamicImage::ImageRgba16(
            ImageBuffer::from_raw(1, 1, vec![0x1234u16, 0, 0xffff, 0xffff]).unwrap(),
        );
        assert_eq!(to_rgb8(&rgba16).as_raw(), &[0x12, 0, 0xff]);

        let rgb = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([1, 2, 3])));
        assert!(matches!(to_rgb8(&rgb), Cow::Borrowed(_)));
    }

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

    #[test]
    fn load_image_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.png");
        let err = load_image(&missing).unwrap_err();
        assert!(err.to_string().contains("missing.png"), "{err}");

        let garbage = dir.path().join("garbage.jpg");
        std::fs::write(&garbage, b"this is not an image").unwrap();
        let err = load_image(&garbage).unwrap_err();
        assert!(matches!(err, Error::ImageDecode { .. }), "{err}");

        // A truncated PNG.
        let png = dir.path().join("t.png");
        RgbImage::from_pixel(64, 64, Rgb([1, 2, 3]))
            .save(&png)
            .unwrap();
        let bytes = std::fs::read(&png).unwrap();
        let truncated = dir.path().join("truncated.png");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load_image(&truncated).is_err());

        // Wrong extension: a PNG named .jpg decodes by content.
        let wrong = dir.path().join("really_png.jpg");
        std::fs::write(&wrong, &bytes).unwrap();
        assert_eq!(load_image(&wrong).unwrap().width(), 64);

        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        assert!(load_image(&empty).is_err());
    }

    #[test]
    fn decompression_bomb_is_refused() {
        // A PNG header claiming 100000 x 100000 pixels.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.png");
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        std::fs::write(&path, &png).unwrap();
        // Refused from the header, with the numbers, before anything is allocated.
        match load_image(&path) {
            Err(Error::ImageTooLarge { width, height, .. }) => {
                assert_eq!((width, height), (100_000, 100_000))
            }
            other => panic!("{other:?}"),
        }
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
