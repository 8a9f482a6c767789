//! Image files to decoded images: format detection, size limits, EXIF orientation.
//!
//! - The format comes from the content, never the file name. JPEG goes to libjpeg-turbo
//!   (module `jpeg`, bit-exact with PIL); PNG, WebP, BMP and TIFF (first page) go to
//!   the `image` crate's decoders, GIF (first frame) to the `gif` crate's, composed as PIL
//!   does. Anything else is refused.
//! - **Limits.** The size in the file's header is checked against
//!   [`ImageOptions::max_pixels`] before any pixel buffer is allocated (the JPEG header
//!   is parsed by libjpeg; the other decoders are asked for their dimensions before
//!   decoding), so a 100000×100000 header costs nothing. The default,
//!   [`DEFAULT_MAX_PIXELS`], is PIL's own decompression-bomb limit (`2 *
//!   Image.MAX_IMAGE_PIXELS`), and admits 100-megapixel photos. The `image` crate's
//!   allocation limit is set as a second line of defence, and the file is not read if it
//!   is larger than any image within the limit could need.
//! - **EXIF orientation.** `PIL.Image.open`, and so a transformers processor given that
//!   image, ignore it; `transformers.image_utils.load_image` applies it
//!   (`ImageOps.exif_transpose`). [`ImageOptions::apply_exif_orientation`] picks one; the
//!   default (false) matches `Image.open`.
//! - **DCT-domain downscaling** (optional, [`ImageOptions::jpeg_dct_scaling`]): when the
//!   resize target is at most half the JPEG's size, libjpeg's scaled inverse DCT decodes
//!   straight to 1/2, 1/4 or 1/8 of the size (the largest reduction that keeps twice the
//!   target, as Pillow's `thumbnail` drafts; else 1/2), much faster for large photos. The
//!   result is no longer bit-exact with PIL (which decodes at full size); see
//!   [`ImageOptions`] for the measured cosine.

use std::io::Cursor;
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::error::{Error, Result};

/// PIL's decompression-bomb limit (`2 * Image.MAX_IMAGE_PIXELS`, 178,956,970 pixels),
/// the default of [`ImageOptions::max_pixels`]: it admits 100-megapixel photos.
pub const DEFAULT_MAX_PIXELS: u64 = 178_956_970;

/// How image files are read (and, in batch APIs, on how many threads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOptions {
    /// Rotate and flip images as their EXIF orientation says (as
    /// `transformers.image_utils.load_image` and photo viewers do). Default false:
    /// pixels as stored, as `PIL.Image.open` gives them to a transformers processor.
    pub apply_exif_orientation: bool,
    /// Largest image accepted, in pixels (width × height as the file's header says).
    /// Bigger files are refused with [`Error::ImageTooLarge`] before decoding. Default
    /// [`DEFAULT_MAX_PIXELS`].
    pub max_pixels: u64,
    /// Decode large JPEGs at 1/2, 1/4 or 1/8 size in the DCT domain when the resize
    /// target is at most half the image (default false; see the module documentation).
    /// About 3× faster on 12-megapixel photos, but not bit-exact with PIL: image
    /// embeddings against the full decode measured cosine 0.99999 at 1/2 and 1/4 and
    /// 0.99991 at 1/8 (`tests/jpeg_end_to_end.rs`).
    pub jpeg_dct_scaling: bool,
    /// Threads for batch decoding and preprocessing
    /// ([`ImagePreprocessor::preprocess_files`](super::ImagePreprocessor::preprocess_files)).
    /// `None`: one per available core.
    pub threads: Option<usize>,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            apply_exif_orientation: false,
            max_pixels: DEFAULT_MAX_PIXELS,
            jpeg_dct_scaling: false,
            threads: None,
        }
    }
}

impl ImageOptions {
    /// The number of threads batch APIs use.
    pub fn thread_count(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    /// Largest file read: an uncompressed 16-bit RGBA image at the pixel limit, plus
    /// room for metadata. Bigger files cannot hold an image within the limit.
    fn max_file_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(64 << 20)
    }
}

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
    fn into_error(self, path: &Path) -> Error {
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

fn swaps_axes(orientation: Option<Orientation>) -> bool {
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

/// A decoded image and the size the preprocessing must treat it as having.
pub(crate) struct Decoded {
    /// The pixels, oriented as asked; smaller than `logical_size` after DCT scaling.
    pub image: DynamicImage,
    /// `(width, height)` of the full-size image, oriented as asked.
    pub logical_size: (u32, u32),
}

thread_local! {
    /// A pixel buffer kept between the decodes of one thread in batch preprocessing
    /// ([`take_scratch`], [`recycle`]): a fresh buffer for a large photo costs page faults
    /// and zeroing by the kernel (about 10 % of preprocessing a 12-megapixel JPEG).
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Largest buffer kept per thread (a 85-megapixel RGB image); bigger ones are freed.
const MAX_SCRATCH_BYTES: usize = 256 << 20;

/// This thread's reusable pixel buffer (empty if none).
pub(crate) fn take_scratch() -> Vec<u8> {
    SCRATCH.with(|s| s.take())
}

/// Gives a decoded image's pixel buffer back to this thread for the next decode.
pub(crate) fn recycle(image: DynamicImage) {
    let buffer = match image {
        DynamicImage::ImageRgb8(i) => i.into_raw(),
        DynamicImage::ImageLuma8(i) => i.into_raw(),
        _ => return,
    };
    if buffer.capacity() <= MAX_SCRATCH_BYTES {
        SCRATCH.with(|s| s.set(buffer));
    }
}

/// Reads and decodes an image file. See the module documentation.
pub fn read_image(path: &Path, options: &ImageOptions) -> Result<DynamicImage> {
    decode_file(path, options, None, Vec::new()).map(|d| d.image)
}

/// Decodes an encoded image held in memory (JPEG, PNG, WebP, GIF, BMP or TIFF), with the
/// same limits and options as [`read_image`]. Errors name the file as `<memory>`.
pub fn decode_image_bytes(data: &[u8], options: &ImageOptions) -> Result<DynamicImage> {
    let request = DecodeRequest {
        max_pixels: options.max_pixels,
        apply_exif_orientation: options.apply_exif_orientation,
        target: None,
    };
    decode_bytes(data, &request, Vec::new())
        .map(|d| d.image)
        .map_err(|e| e.into_error(Path::new("<memory>")))
}

/// Reads and decodes a file; `target` enables DCT-domain downscaling (when the options
/// allow it). JPEGs are decoded into `buffer`'s allocation.
pub(crate) fn decode_file(
    path: &Path,
    options: &ImageOptions,
    target: Option<TargetFn<'_>>,
    buffer: Vec<u8>,
) -> Result<Decoded> {
    let io_err = |e: std::io::Error| Error::ImageDecode {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let len = std::fs::metadata(path).map_err(io_err)?.len();
    if len > options.max_file_bytes() {
        return Err(Error::ImageDecode {
            path: path.to_path_buf(),
            message: format!(
                "the file has {len} bytes, more than an image of at most {} pixels needs",
                options.max_pixels
            ),
        });
    }
    let data = std::fs::read(path).map_err(io_err)?;
    let request = DecodeRequest {
        max_pixels: options.max_pixels,
        apply_exif_orientation: options.apply_exif_orientation,
        target: target.filter(|_| options.jpeg_dct_scaling),
    };
    decode_bytes(&data, &request, buffer).map_err(|e| e.into_error(path))
}

fn decode_bytes(
    data: &[u8],
    request: &DecodeRequest<'_>,
    buffer: Vec<u8>,
) -> Result<Decoded, DecodeError> {
    if data.is_empty() {
        return Err(DecodeError::Empty);
    }
    let format = image::guess_format(data).map_err(|_| {
        DecodeError::Unsupported(
            "unknown or unsupported image format (vtde reads JPEG, PNG, WebP, GIF, BMP and TIFF)"
                .into(),
        )
    })?;
    let RawDecoded {
        mut image,
        full_size,
        orientation,
    } = match format {
        ImageFormat::Jpeg => super::jpeg::decode(data, request, buffer)?,
        ImageFormat::Png
        | ImageFormat::WebP
        | ImageFormat::Gif
        | ImageFormat::Bmp
        | ImageFormat::Tiff => decode_with_image_crate(data, format, request)?,
        other => {
            return Err(DecodeError::Unsupported(format!(
                "{other:?} images are not supported (vtde reads JPEG, PNG, WebP, GIF, BMP and TIFF)"
            )))
        }
    };
    let mut logical_size = full_size;
    if let Some(o) = orientation {
        image.apply_orientation(o);
        if swaps_axes(Some(o)) {
            logical_size = (full_size.1, full_size.0);
        }
    }
    Ok(Decoded {
        image,
        logical_size,
    })
}

/// PIL's `cmyk2rgb` (Convert.c): `255 - k - round(c * (255 - k) / 255)` per channel, with
/// Pillow's rounded integer division.
pub(crate) fn cmyk_to_rgb([c, m, y, k]: [u8; 4]) -> [u8; 3] {
    let nk = 255 - u32::from(k);
    // MULDIV255(a, b): (t + (t >> 8)) >> 8 with t = a * b + 128.
    let ch = |v: u8| {
        let t = u32::from(v) * nk + 128;
        nk.saturating_sub(((t >> 8) + t) >> 8) as u8
    };
    [ch(c), ch(m), ch(y)]
}

/// The 8-bit samples of a TIFF's first image as the `tiff` crate reads them,
/// `channels` per pixel: the size is checked against the pixel limit first, and the
/// EXIF orientation read when asked for. `what` names the kind of file in errors.
struct TiffSamples {
    samples: Vec<u8>,
    size: (u32, u32),
    orientation: Option<Orientation>,
}

fn read_tiff_samples<R: std::io::Read + std::io::Seek>(
    mut decoder: tiff::decoder::Decoder<R>,
    request: &DecodeRequest<'_>,
    channels: u64,
    what: &str,
) -> Result<TiffSamples, DecodeError> {
    let corrupt = |e: tiff::TiffError| DecodeError::Corrupt(e.to_string());
    let (width, height) = decoder.dimensions().map_err(corrupt)?;
    request.check_size(width, height)?;
    // The size is within the pixel limit: let the decoder allocate what it needs.
    let mut limits = tiff::decoder::Limits::default();
    limits.decoding_buffer_size = usize::try_from(u64::from(width) * u64::from(height) * channels)
        .unwrap_or(usize::MAX)
        .max(limits.decoding_buffer_size);
    let mut decoder = decoder.with_limits(limits);
    let orientation = if request.apply_exif_orientation {
        decoder
            .find_tag_unsigned::<u16>(tiff::tags::Tag::Orientation)
            .ok()
            .flatten()
            .and_then(|v| Orientation::from_exif(v.min(255) as u8))
    } else {
        None
    };
    let tiff::decoder::DecodingResult::U8(samples) = decoder.read_image().map_err(corrupt)? else {
        return Err(DecodeError::Corrupt(format!(
            "{what} without 8-bit samples"
        )));
    };
    Ok(TiffSamples {
        samples,
        size: (width, height),
        orientation,
    })
}

impl TiffSamples {
    /// The decoded image, from `rgb` computed from the samples.
    fn into_rgb(self, rgb: Vec<u8>, what: &str) -> Result<RawDecoded, DecodeError> {
        let (width, height) = self.size;
        let image = image::RgbImage::from_raw(width, height, rgb)
            .ok_or_else(|| DecodeError::Corrupt(format!("{what} with too few samples")))?;
        Ok(RawDecoded {
            image: DynamicImage::ImageRgb8(image),
            full_size: self.size,
            orientation: self.orientation,
        })
    }
}

/// 8-bit CMYK TIFFs, which the `image` crate converts to RGB with its own float formula
/// (one level off PIL in half the samples): the samples are decoded with the `tiff` crate
/// and converted as PIL does. `None` when the file is not an 8-bit CMYK TIFF.
fn decode_tiff_cmyk(
    data: &[u8],
    request: &DecodeRequest<'_>,
) -> Option<Result<RawDecoded, DecodeError>> {
    let mut decoder = tiff::decoder::Decoder::new(Cursor::new(data)).ok()?;
    if decoder.colortype().ok()? != tiff::ColorType::CMYK(8) {
        return None;
    }
    const WHAT: &str = "CMYK TIFF";
    Some(
        read_tiff_samples(decoder, request, 4, WHAT).and_then(|tiff| {
            let rgb: Vec<u8> = tiff
                .samples
                .chunks_exact(4)
                .flat_map(|p| cmyk_to_rgb([p[0], p[1], p[2], p[3]]))
                .collect();
            tiff.into_rgb(rgb, WHAT)
        }),
    )
}

/// Where IFD0 of a classic TIFF keeps its PhotometricInterpretation value, if that value
/// is RGB palette (3): the byte offset of the 2-byte value. `None` for anything else
/// (BigTIFF, other interpretations, truncated headers).
fn tiff_palette_photometric_offset(data: &[u8]) -> Option<usize> {
    let little = match data.get(..4)? {
        [b'I', b'I', 42, 0] => true,
        [b'M', b'M', 0, 42] => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let entries = usize::from(u16_at(ifd)?);
    (0..entries).find_map(|i| {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        // Tag 262, type SHORT (3), count 1: the value sits in the first two bytes of the
        // value field.
        (u16_at(entry)? == 262 && u16_at(entry + 2)? == 3 && u32_at(entry + 4)? == 1)
            .then_some(entry + 8)
            .filter(|&at| u16_at(at) == Some(3))
    })
}

/// 8-bit palette TIFFs, which the `tiff` crate refuses: the file is read as 8-bit
/// greyscale (its PhotometricInterpretation patched in a copy) to get the indices, which
/// are expanded with the ColorMap tag as PIL does (`RGB;L` layout: all reds, then greens,
/// then blues; 16-bit entries divided by 256). `None` when the file is not a palette TIFF
/// of 8-bit samples.
fn decode_tiff_palette(
    data: &[u8],
    request: &DecodeRequest<'_>,
) -> Option<Result<RawDecoded, DecodeError>> {
    let at = tiff_palette_photometric_offset(data)?;
    let mut patched = data.to_vec();
    let grey: [u8; 2] = if patched.starts_with(b"II") {
        1u16.to_le_bytes()
    } else {
        1u16.to_be_bytes()
    };
    patched.get_mut(at..at + 2)?.copy_from_slice(&grey);
    let mut decoder = tiff::decoder::Decoder::new(Cursor::new(patched.as_slice())).ok()?;
    if decoder.colortype().ok()? != tiff::ColorType::Gray(8) {
        return None;
    }
    const WHAT: &str = "palette TIFF";
    let colormap = match decoder.get_tag_u16_vec(tiff::tags::Tag::ColorMap) {
        Ok(map) if map.len() == 3 * 256 => map,
        Ok(map) => {
            return Some(Err(DecodeError::Corrupt(format!(
                "{WHAT} with a ColorMap of {} entries, not 768",
                map.len()
            ))))
        }
        Err(e) => return Some(Err(DecodeError::Corrupt(e.to_string()))),
    };
    Some(
        read_tiff_samples(decoder, request, 1, WHAT).and_then(|tiff| {
            let channel = |c: usize, i: u8| (colormap[c * 256 + usize::from(i)] / 256) as u8;
            let rgb: Vec<u8> = tiff
                .samples
                .iter()
                .flat_map(|&i| [channel(0, i), channel(1, i), channel(2, i)])
                .collect();
            tiff.into_rgb(rgb, WHAT)
        }),
    )
}

/// GIF's first frame as PIL opens it: a palette image of the screen's size, filled outside
/// the frame with the frame's transparent index (or index 0 when it has none, where the
/// `image` crate would leave transparent black), with the frame's local palette or the
/// global one. Returned as RGBA (the transparent index has alpha 0), which
/// [`super::image::to_rgb8`] composites as transformers does.
fn decode_gif(data: &[u8], request: &DecodeRequest<'_>) -> Result<RawDecoded, DecodeError> {
    let corrupt = |e: gif::DecodingError| DecodeError::Corrupt(format!("GIF: {e}"));
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    if let Some(limit) = std::num::NonZeroU64::new(request.max_pixels) {
        // Indexed output: one byte per pixel of a frame.
        options.set_memory_limit(gif::MemoryLimit::Bytes(limit));
    }
    let mut decoder = options.read_info(Cursor::new(data)).map_err(corrupt)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    request.check_size(width, height)?;
    let global = decoder.global_palette().map(<[u8]>::to_vec);
    let frame = decoder
        .read_next_frame()
        .map_err(|e| match e {
            gif::DecodingError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                DecodeError::Truncated
            }
            other => corrupt(other),
        })?
        .ok_or_else(|| DecodeError::Corrupt("the GIF has no image".into()))?;
    let (w, h) = (width as usize, height as usize);
    let mut indices = vec![frame.transparent.unwrap_or(0); w * h];
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let frame_w = usize::from(frame.width);
    if frame_w > 0 && left < w {
        let visible = frame_w.min(w - left);
        for (y, row) in frame.buffer.chunks(frame_w).enumerate() {
            let Some(out_y) = (top + y < h).then_some(top + y) else {
                break;
            };
            let dst = &mut indices[out_y * w + left..out_y * w + left + visible];
            dst.copy_from_slice(&row[..visible.min(row.len())]);
        }
    }
    let palette = frame
        .palette
        .as_deref()
        .or(global.as_deref())
        .unwrap_or(&[]);
    let rgba: Vec<u8> = indices
        .iter()
        .flat_map(|&i| {
            let c = |k: usize| palette.get(usize::from(i) * 3 + k).copied().unwrap_or(0);
            let alpha = if frame.transparent == Some(i) { 0 } else { 255 };
            [c(0), c(1), c(2), alpha]
        })
        .collect();
    let image = image::RgbaImage::from_raw(width, height, rgba)
        .ok_or_else(|| DecodeError::Corrupt("GIF buffer of the wrong size".into()))?;
    Ok(RawDecoded {
        image: DynamicImage::ImageRgba8(image),
        full_size: (width, height),
        orientation: None,
    })
}

/// The width and height of a PNG's IHDR chunk (the first chunk, at byte 8).
fn png_ihdr_size(data: &[u8]) -> Option<(u32, u32)> {
    let ihdr = data.get(12..24)?;
    if &ihdr[..4] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&ihdr[4..8]), be(&ihdr[8..12])))
}

/// PNG, WebP, GIF, BMP and TIFF through the `image` crate: the header's size is checked
/// before the pixels are decoded.
fn decode_with_image_crate(
    data: &[u8],
    format: ImageFormat,
    request: &DecodeRequest<'_>,
) -> Result<RawDecoded, DecodeError> {
    let corrupt = |e: image::ImageError| DecodeError::Corrupt(e.to_string());
    // Decoders are not supposed to panic, but a batch job over millions of files must
    // not die on one decoder bug: a panic becomes this file's error.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if format == ImageFormat::Tiff {
            if let Some(result) = decode_tiff_cmyk(data, request) {
                return result;
            }
            if let Some(result) = decode_tiff_palette(data, request) {
                return result;
            }
        }
        if format == ImageFormat::Gif {
            return decode_gif(data, request);
        }
        // PNG's size sits at a fixed place: check it even when the rest of the file is
        // missing (the decoder would first complain about that).
        if let Some((width, height)) = png_ihdr_size(data).filter(|_| format == ImageFormat::Png) {
            request.check_size(width, height)?;
        }
        let mut reader = ImageReader::with_format(Cursor::new(data), format);
        let mut limits = image::Limits::default();
        // The pixel limit is checked below with the real numbers; the allocation limit
        // is a backstop for decoders that allocate before saying how large they are.
        limits.max_alloc = Some(
            request
                .max_pixels
                .saturating_mul(8)
                .saturating_add(64 << 20),
        );
        reader.limits(limits);
        let mut decoder = reader.into_decoder().map_err(corrupt)?;
        let (width, height) = decoder.dimensions();
        request.check_size(width, height)?;
        let orientation = if request.apply_exif_orientation {
            decoder.orientation().ok()
        } else {
            None
        };
        let image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
            image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                DecodeError::Truncated
            }
            other => corrupt(other),
        })?;
        Ok(RawDecoded {
            image,
            full_size: (width, height),
            orientation,
        })
    }));
    decoded.unwrap_or_else(|_| {
        Err(DecodeError::Corrupt(
            "the decoder panicked on this file".into(),
        ))
    })
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
    fn cmyk_conversion_follows_pillow() {
        assert_eq!(cmyk_to_rgb([0, 0, 0, 0]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb([200, 17, 0, 255]), [0, 0, 0]);
        assert_eq!(cmyk_to_rgb([255, 0, 0, 0]), [0, 255, 255]);
        // 255 - 40 = 215; 215 - round(100 * 215 / 255) = 215 - 84 = 131.
        assert_eq!(cmyk_to_rgb([100, 0, 0, 40]), [131, 215, 215]);
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
