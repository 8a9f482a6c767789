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
//! - **Regular files only, reads bounded** (module `read`): devices, FIFOs, sockets and
//!   directories are refused without being opened for a blocking read (a symlink to
//!   `/dev/zero` is refused as the character device it leads to); the read itself stops
//!   at the byte limit, whatever size the file system reports. These failures are
//!   [`Error::ImageUnavailable`] ("cannot read"), decoding failures [`Error::ImageDecode`].
//! - **Decoder panics** in the Rust decoders are caught and become the file's error,
//!   without panic text on stderr (module `panics`).
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

mod generic;
mod gif;
mod jpeg;
mod panics;
mod read;
mod request;
mod tiff;

use std::path::Path;

use image::{DynamicImage, ImageFormat};

use self::request::{swaps_axes, DecodeError, DecodeRequest, RawDecoded};
use crate::error::{Error, Result};

pub(crate) use self::panics::catch_quietly;
pub(crate) use self::request::TargetFn;

/// Most threads [`ImageOptions::with_decode_threads`] and [`ImageOptions::thread_count`]
/// give the streaming pipeline (as `vtde --decode-threads` allows): more would only cost
/// memory (a thread stack and a scratch buffer each) and start-up time.
pub(crate) const MAX_DECODE_THREADS: usize = 1024;

/// PIL's decompression-bomb limit (`2 * Image.MAX_IMAGE_PIXELS`, 178,956,970 pixels),
/// the default of [`ImageOptions::max_pixels`]: it admits 100-megapixel photos.
pub const DEFAULT_MAX_PIXELS: u64 = 178_956_970;

/// How image files are read, and on how many threads the streaming pipeline decodes them.
///
/// ```
/// use vtde_runtime::ImageOptions;
///
/// let photos = ImageOptions::default().with_exif_orientation(true).with_decode_threads(4);
/// assert!(photos.apply_exif_orientation);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Threads decoding and preprocessing in the streaming pipeline
    /// ([`Model::stream_image_files`](crate::Model::stream_image_files)). `None`: one per
    /// available core. At most 1024 are used.
    pub threads: Option<usize>,
    /// Run those threads at a lower scheduling priority than the model's (default true;
    /// Linux: nice +10 per thread; elsewhere no effect). The model's threads meet at a
    /// barrier after every parallel operator, so one of them preempted by a decoder
    /// stalls all the others; at a lower priority the decoders take the cores when the
    /// model leaves them idle instead. See docs/performance.md for the measurements.
    pub low_priority_decoding: bool,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            apply_exif_orientation: false,
            max_pixels: DEFAULT_MAX_PIXELS,
            jpeg_dct_scaling: false,
            threads: None,
            low_priority_decoding: true,
        }
    }
}

impl ImageOptions {
    /// Sets [`ImageOptions::apply_exif_orientation`].
    pub fn with_exif_orientation(mut self, apply: bool) -> Self {
        self.apply_exif_orientation = apply;
        self
    }

    /// Sets [`ImageOptions::max_pixels`].
    pub fn with_max_pixels(mut self, max_pixels: u64) -> Self {
        self.max_pixels = max_pixels;
        self
    }

    /// Sets [`ImageOptions::jpeg_dct_scaling`].
    pub fn with_jpeg_dct_scaling(mut self, on: bool) -> Self {
        self.jpeg_dct_scaling = on;
        self
    }

    /// Sets [`ImageOptions::threads`], clamped to `1..=1024`.
    pub fn with_decode_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads.clamp(1, MAX_DECODE_THREADS));
        self
    }

    /// Sets [`ImageOptions::low_priority_decoding`].
    pub fn with_low_priority_decoding(mut self, low: bool) -> Self {
        self.low_priority_decoding = low;
        self
    }

    /// The number of threads the streaming pipeline decodes on, in
    /// `1..=1024` (a larger [`ImageOptions::threads`] set directly is clamped).
    pub fn thread_count(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, MAX_DECODE_THREADS)
    }

    /// Largest file read: an uncompressed 16-bit RGBA image at the pixel limit, plus
    /// room for metadata. Bigger files cannot hold an image within the limit.
    fn max_file_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(64 << 20)
    }
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

/// Reads and decodes an image file: the format is detected from the content, not the
/// file name; for animated formats the first frame is returned. With
/// `ImageOptions::default()` this is `PIL.Image.open` (no EXIF orientation, PIL's pixel
/// limit). See the module documentation.
pub fn read_image(path: impl AsRef<Path>, options: &ImageOptions) -> Result<DynamicImage> {
    decode_file(path.as_ref(), options, None, Vec::new()).map(|d| d.image)
}

/// Decodes an encoded image held in memory (JPEG, PNG, WebP, GIF, BMP or TIFF), with the
/// same limits and options as [`read_image`]. Errors name the file as `<memory>`.
pub fn decode_image(data: &[u8], options: &ImageOptions) -> Result<DynamicImage> {
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
    let limit = options.max_file_bytes();
    let data = read::read_regular_file(path, limit).map_err(|e| Error::ImageUnavailable {
        path: path.to_path_buf(),
        message: match e {
            read::ReadError::TooLong { .. } => format!(
                "{e}, more than an image of at most {} pixels needs",
                options.max_pixels
            ),
            other => other.to_string(),
        },
    })?;
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
        ImageFormat::Jpeg => jpeg::decode(data, request, buffer)?,
        ImageFormat::Png
        | ImageFormat::WebP
        | ImageFormat::Gif
        | ImageFormat::Bmp
        | ImageFormat::Tiff => catching_panics(|| match format {
            ImageFormat::Tiff => tiff::decode(data, request),
            ImageFormat::Gif => gif::decode(data, request),
            _ => generic::decode(data, format, request),
        })?,
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

/// Runs a Rust decoder. Decoders are not supposed to panic, but a batch job over millions
/// of files must not die on one decoder bug: a panic becomes this file's error, quietly
/// ([`panics`]: no panic text on stderr).
fn catching_panics(
    decode: impl FnOnce() -> Result<RawDecoded, DecodeError>,
) -> Result<RawDecoded, DecodeError> {
    catch_quietly(decode).unwrap_or_else(|message| {
        Err(DecodeError::Corrupt(format!(
            "the decoder panicked on this file ({message})"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};
    use std::path::PathBuf;

    fn load_image(path: &Path) -> Result<DynamicImage> {
        read_image(path, &ImageOptions::default())
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

    /// Runs `f` on a thread; fails (instead of hanging) if it takes over 10 s.
    #[cfg(unix)]
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading the image blocked for 10 s")
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_through_the_path_api() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.jpg");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        for (path, what) in [
            (PathBuf::from("/dev/zero"), "is a character device"),
            (fifo, "is a FIFO (named pipe)"),
            (dir.path().to_path_buf(), "is a directory"),
        ] {
            let err = within_10s(move || load_image(&path).unwrap_err());
            assert!(matches!(err, Error::ImageUnavailable { .. }), "{err}");
            assert!(
                err.to_string()
                    .ends_with(&format!("{what}, not a regular file")),
                "{err}"
            );
        }
        // A missing file is a read failure too, said once.
        let err = load_image(&dir.path().join("missing.png")).unwrap_err();
        assert!(matches!(err, Error::ImageUnavailable { .. }), "{err}");
    }

    #[test]
    fn files_longer_than_the_limit_are_refused() {
        // 1000 pixels allow 8000 bytes plus 64 MiB of metadata: a longer file is not read.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.png");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len((64 << 20) + 8000 + 1).unwrap();
        let options = ImageOptions::default().with_max_pixels(1000);
        let err = read_image(&path, &options).unwrap_err();
        assert!(
            err.to_string().contains("larger than 67116864 bytes"),
            "{err}"
        );
    }

    #[test]
    fn decode_threads_are_bounded() {
        let o = ImageOptions::default().with_decode_threads(1_000_000);
        assert_eq!(o.threads, Some(1024));
        assert_eq!(
            ImageOptions::default()
                .with_decode_threads(0)
                .thread_count(),
            1
        );
        let direct = ImageOptions {
            threads: Some(1_000_000),
            ..ImageOptions::default()
        };
        assert_eq!(direct.thread_count(), 1024);
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
