//! PNG, WebP, BMP and most TIFFs, through the `image` crate's decoders (a BMP's colour
//! planes field is ignored, as PIL ignores it).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::request::{DecodeError, DecodeRequest, RawDecoded};

/// The width and height of a PNG's IHDR chunk (the first chunk, at byte 8).
fn png_ihdr_size(data: &[u8]) -> Option<(u32, u32)> {
    let ihdr = data.get(12..24)?;
    if &ihdr[..4] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&ihdr[4..8]), be(&ihdr[8..12])))
}

/// A copy of a BMP whose header gives a number of colour planes other than 1, with 1
/// there: PIL ignores the field (BMP has one plane by definition), the `image` crate
/// refuses the file. `None` when the field is 1 or the header too short.
fn bmp_with_one_plane(data: &[u8]) -> Option<Vec<u8>> {
    // The DIB header starts at byte 14 with its size; planes are at byte 22 in the OS/2 v1
    // header (12 bytes), at byte 26 in every later one.
    let header_size = u32::from_le_bytes(data.get(14..18)?.try_into().ok()?);
    let at = if header_size == 12 { 22 } else { 26 };
    let planes = u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?);
    if planes == 1 {
        return None;
    }
    let mut out = data.to_vec();
    out[at..at + 2].copy_from_slice(&1u16.to_le_bytes());
    Some(out)
}

/// PNG, WebP, BMP and the TIFFs [`super::tiff`] leaves, through the `image` crate: the
/// header's size is checked before the pixels are decoded.
pub(crate) fn decode(
    data: &[u8],
    format: ImageFormat,
    request: &DecodeRequest<'_>,
) -> Result<RawDecoded, DecodeError> {
    let corrupt = |e: image::ImageError| DecodeError::Corrupt(e.to_string());
    let one_plane;
    let data = match bmp_with_one_plane(data).filter(|_| format == ImageFormat::Bmp) {
        Some(patched) => {
            one_plane = patched;
            one_plane.as_slice()
        }
        None => data,
    };
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
}
