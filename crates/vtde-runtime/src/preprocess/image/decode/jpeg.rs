//! JPEG decoding with libjpeg-turbo, the decoder PIL uses, for pixels identical to PIL's.
//!
//! JPEG decoders disagree in the last bits: the inverse DCT's rounding, the chroma
//! upsampling (libjpeg-turbo's "fancy" triangular filter for 4:2:0 and 4:2:2) and the
//! YCbCr → RGB fixed-point arithmetic. Measured against Pillow 13 on scikit-image's photos
//! re-encoded at 4:2:0, 4:2:2, 4:4:4 and progressive, zune-jpeg (the `image` crate's
//! decoder) differs by up to 7 levels (mean 0.1–0.24 levels, 10–17 % of the samples at
//! 4:2:0) and the `jpeg-decoder` crate by up to 4; libjpeg-turbo, compiled from source by
//! `mozjpeg-sys` (mozjpeg's decoder is libjpeg-turbo's), is bit-exact on all of them, with
//! or without its SIMD code. It is also the fastest of the three when nasm is installed
//! at build time (its SIMD code is written in nasm; without nasm the C code is about 2×
//! slower, still exact).
//!
//! The decoder is configured as Pillow's `JpegDecode.c` leaves libjpeg: `JDCT_ISLOW`, fancy
//! upsampling, RGB out for YCbCr/RGB files, greyscale for one component, CMYK for CMYK
//! and YCCK files. Pillow reads CMYK JPEGs as Adobe-inverted (`CMYK;I`) and converts to
//! RGB with `cmyk2rgb`; both are reproduced here ([`cmyk_to_rgb`]).
//!
//! Errors: libjpeg reports fatal errors through `error_exit`, which must not return. It
//! is replaced by a function that unwinds (`resume_unwind`, which skips the panic hook)
//! back to [`decode`], which catches it; the C code is compiled with unwind tables
//! (mozjpeg-sys's `unwinding` feature), and the decompressor is destroyed by a guard
//! during the unwind. A file that ends early is an error too (libjpeg only warns and
//! pads with grey, PIL refuses with "image file is truncated"); other warnings
//! ("corrupt data: N extraneous bytes") are ignored as PIL ignores them.

use std::ffi::{c_int, c_uint, c_ulong};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, RgbImage};
use mozjpeg_sys as ffi;

use super::request::{scaled_numerator, DecodeError, DecodeRequest, RawDecoded};

/// Largest number of progressive scans accepted. Each scan re-reads the whole coefficient
/// buffer, so a crafted file with thousands of tiny scans takes minutes to decode;
/// libjpeg-turbo's own tools cap it the same way. Real files have about 10.
const MAX_SCANS: c_int = 1000;

/// Rows handed to `jpeg_read_scanlines` per call.
const ROWS_PER_CALL: usize = 16;

/// What an unwinding error handler carries back to [`decode`].
struct JpegFailure(DecodeError);

/// The message libjpeg has for its current error code.
fn libjpeg_message(cinfo: &mut ffi::jpeg_common_struct) -> String {
    // SAFETY: `err` points to the error manager installed in `decode`, alive as long as
    // the decompressor; `format_message` writes at most JMSG_LENGTH_MAX (200) bytes,
    // which the buffer holds (the binding declares 80, too short for libjpeg-turbo).
    unsafe {
        let Some(err) = cinfo.err.as_ref() else {
            return "libjpeg error".into();
        };
        let Some(format) = err.format_message else {
            return format!("libjpeg error {}", err.msg_code);
        };
        let mut buffer = [0u8; 256];
        let format: unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, *mut u8) =
            std::mem::transmute(format);
        format(cinfo, buffer.as_mut_ptr());
        let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    }
}

unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let message = libjpeg_message(cinfo);
    resume_unwind(Box::new(JpegFailure(DecodeError::Corrupt(message))))
}

unsafe extern "C-unwind" fn emit_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    // SAFETY: as in `libjpeg_message`.
    let code = unsafe { cinfo.err.as_ref() }.map_or(0, |e| e.msg_code);
    if level < 0 && code == ffi::JWRN_JPEG_EOF as c_int {
        resume_unwind(Box::new(JpegFailure(DecodeError::Truncated)));
    }
}

unsafe extern "C-unwind" fn output_message(_cinfo: &mut ffi::jpeg_common_struct) {}

unsafe extern "C-unwind" fn progress_monitor(cinfo: &mut ffi::jpeg_common_struct) {
    if cinfo.is_decompressor == 0 {
        return;
    }
    // SAFETY: a decompressor's common struct is the first field of its
    // `jpeg_decompress_struct` (repr(C)), so the pointer is that struct's.
    let scans = unsafe {
        (*(cinfo as *mut ffi::jpeg_common_struct as *mut ffi::jpeg_decompress_struct))
            .input_scan_number
    };
    if scans > MAX_SCANS {
        resume_unwind(Box::new(JpegFailure(DecodeError::Corrupt(format!(
            "more than {MAX_SCANS} progressive scans"
        )))));
    }
}

/// A libjpeg decompressor with its error and progress managers; destroyed on drop (also
/// while unwinding from an error).
struct Decompressor {
    cinfo: Box<ffi::jpeg_decompress_struct>,
    _err: Box<ffi::jpeg_error_mgr>,
    _progress: Box<ffi::jpeg_progress_mgr>,
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: `cinfo` was created by `jpeg_create_decompress`; destroying it is valid
        // in any state, including after `error_exit`.
        unsafe { ffi::jpeg_destroy_decompress(&mut self.cinfo) };
    }
}

impl Decompressor {
    /// A decompressor reading `data` (which must outlive it), with markers APP1 saved.
    fn new(data: &[u8]) -> Self {
        // SAFETY: the structs are plain C data for which all-zero is the state libjpeg
        // expects before `jpeg_std_error` / `jpeg_create_decompress`. They are boxed so
        // that the pointers libjpeg keeps to them stay valid.
        unsafe {
            let mut err: Box<ffi::jpeg_error_mgr> = Box::new(std::mem::zeroed());
            ffi::jpeg_std_error(&mut err);
            err.error_exit = Some(error_exit);
            err.emit_message = Some(emit_message);
            err.output_message = Some(output_message);
            let mut progress: Box<ffi::jpeg_progress_mgr> = Box::new(std::mem::zeroed());
            progress.progress_monitor = Some(progress_monitor);
            let mut cinfo: Box<ffi::jpeg_decompress_struct> = Box::new(std::mem::zeroed());
            cinfo.common.err = &mut *err;
            ffi::jpeg_create_decompress(&mut *cinfo);
            cinfo.common.progress = &mut *progress;
            let mut d = Decompressor {
                cinfo,
                _err: err,
                _progress: progress,
            };
            ffi::jpeg_mem_src(&mut d.cinfo, data.as_ptr(), data.len() as c_ulong);
            ffi::jpeg_save_markers(&mut d.cinfo, ffi::jpeg_marker::APP0 as c_int + 1, 0xffff);
            d
        }
    }

    /// The EXIF orientation from the first APP1 "Exif" marker, if any.
    fn exif_orientation(&self) -> Option<Orientation> {
        let mut marker = self.cinfo.marker_list;
        while !marker.is_null() {
            // SAFETY: libjpeg's saved-marker list: `next`-linked, each with `data_length`
            // bytes at `data`, alive until the decompressor is destroyed.
            let m = unsafe { &*marker };
            if m.marker == ffi::jpeg_marker::APP0 as u8 + 1 && !m.data.is_null() {
                // SAFETY: as above, `data` holds `data_length` bytes (checked non-null).
                let data = unsafe { std::slice::from_raw_parts(m.data, m.data_length as usize) };
                if let Some(tiff) = data.strip_prefix(b"Exif\0\0") {
                    return Orientation::from_exif_chunk(tiff);
                }
            }
            marker = m.next;
        }
        None
    }
}

/// PIL's conversion of a CMYK JPEG: the samples libjpeg returns are read as
/// Adobe-inverted (`CMYK;I`), then converted with `cmyk2rgb`.
#[inline]
fn cmyk_to_rgb(px: &[u8]) -> [u8; 3] {
    crate::preprocess::image::colour::cmyk_to_rgb([
        255 - px[0],
        255 - px[1],
        255 - px[2],
        255 - px[3],
    ])
}

/// Decodes a JPEG into `buffer`'s allocation (reused when large enough). Returns the image
/// (possibly reduced by DCT scaling), the file's full size, and its EXIF orientation
/// when the request asks for it.
pub(crate) fn decode(
    data: &[u8],
    request: &DecodeRequest<'_>,
    buffer: Vec<u8>,
) -> Result<RawDecoded, DecodeError> {
    let result = catch_unwind(AssertUnwindSafe(|| decode_inner(data, request, buffer)));
    match result {
        Ok(r) => r,
        Err(payload) => match payload.downcast::<JpegFailure>() {
            Ok(failure) => Err(failure.0),
            Err(_) => Err(DecodeError::Corrupt("the JPEG decoder panicked".into())),
        },
    }
}

fn decode_inner(
    data: &[u8],
    request: &DecodeRequest<'_>,
    buffer: Vec<u8>,
) -> Result<RawDecoded, DecodeError> {
    let mut d = Decompressor::new(data);
    // SAFETY: a fresh decompressor with a memory source; errors unwind (see module docs).
    unsafe { ffi::jpeg_read_header(&mut d.cinfo, 1) };
    let (width, height) = (d.cinfo.image_width, d.cinfo.image_height);
    request.check_size(width, height)?;
    let orientation = request
        .apply_exif_orientation
        .then(|| d.exif_orientation())
        .flatten();

    use ffi::J_COLOR_SPACE::*;
    let (out_space, channels) = match d.cinfo.jpeg_color_space {
        JCS_GRAYSCALE => (JCS_GRAYSCALE, 1),
        JCS_CMYK | JCS_YCCK => (JCS_CMYK, 4),
        _ => (JCS_RGB, 3),
    };
    d.cinfo.out_color_space = out_space;
    // DCT-domain downscaling (libjpeg's scaled IDCT), only when asked for and when the
    // resize target is at most half the source.
    let numerator = request
        .target_in_file_space(width, height, orientation)
        .map_or(8, |t| scaled_numerator(width, height, t));
    d.cinfo.scale_num = c_uint::from(numerator);
    d.cinfo.scale_denom = 8;

    // SAFETY: header read, parameters set; errors unwind.
    unsafe { ffi::jpeg_start_decompress(&mut d.cinfo) };
    let (w, h) = (
        d.cinfo.output_width as usize,
        d.cinfo.output_height as usize,
    );
    if d.cinfo.output_components != channels || w == 0 || h == 0 {
        return Err(DecodeError::Corrupt(format!(
            "libjpeg gives {} channels of {w}x{h}",
            d.cinfo.output_components
        )));
    }
    let stride = w * channels as usize;
    let len = stride
        .checked_mul(h)
        .ok_or_else(|| DecodeError::Corrupt("image size overflows".into()))?;
    // The rows are written straight into the (possibly reused) buffer's spare capacity:
    // no zero-filling of memory libjpeg overwrites anyway.
    let mut pixels = buffer;
    pixels.clear();
    pixels
        .try_reserve_exact(len)
        .map_err(|_| DecodeError::Corrupt(format!("cannot allocate {len} bytes")))?;
    let base = pixels.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    let mut row = 0usize;
    while row < h {
        let n = (h - row).min(ROWS_PER_CALL);
        let mut rows: [*mut u8; ROWS_PER_CALL] = [std::ptr::null_mut(); ROWS_PER_CALL];
        for (i, r) in rows.iter_mut().take(n).enumerate() {
            // SAFETY: row + i < h, so the offset is within the `len` reserved bytes.
            *r = unsafe { base.add((row + i) * stride) };
        }
        // SAFETY: `rows[..n]` point to `n` writable rows of `stride` bytes, the size of
        // one output scanline; libjpeg writes at most `n` rows.
        let read =
            unsafe { ffi::jpeg_read_scanlines(&mut d.cinfo, rows.as_mut_ptr(), n as c_uint) };
        if read == 0 {
            return Err(DecodeError::Truncated);
        }
        row += read as usize;
    }
    // SAFETY: libjpeg wrote every scanline 0..h in full (`stride` bytes each), so all
    // `len` bytes are initialized.
    unsafe { pixels.set_len(len) };
    // SAFETY: all scanlines read; errors unwind.
    unsafe { ffi::jpeg_finish_decompress(&mut d.cinfo) };
    drop(d);

    let (w32, h32) = (w as u32, h as u32);
    let bad = || DecodeError::Corrupt("decoded buffer has the wrong size".into());
    let image = match channels {
        1 => DynamicImage::ImageLuma8(GrayImage::from_raw(w32, h32, pixels).ok_or_else(bad)?),
        3 => DynamicImage::ImageRgb8(RgbImage::from_raw(w32, h32, pixels).ok_or_else(bad)?),
        _ => {
            let rgb: Vec<u8> = pixels.chunks_exact(4).flat_map(cmyk_to_rgb).collect();
            DynamicImage::ImageRgb8(RgbImage::from_raw(w32, h32, rgb).ok_or_else(bad)?)
        }
    };
    Ok(RawDecoded {
        image,
        full_size: (width, height),
        orientation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion_follows_pillow() {
        // Stored (inverted) CMYK 255,255,255,255 is c=m=y=k=0: white.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        // Full black ink (stored k = 0) gives black whatever the colour inks.
        assert_eq!(cmyk_to_rgb(&[17, 200, 255, 0]), [0, 0, 0]);
        // Pure cyan (stored c = 0): red channel 0, others full.
        assert_eq!(cmyk_to_rgb(&[0, 255, 255, 255]), [0, 255, 255]);
    }
}
