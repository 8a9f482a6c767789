//! PNG, WebP, BMP and most TIFFs, through the `image` crate's decoders.

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

/// PNG, WebP, BMP and the TIFFs [`super::tiff`] leaves, through the `image` crate: the
/// header's size is checked before the pixels are decoded.
pub(crate) fn decode(
    data: &[u8],
    format: ImageFormat,
    request: &DecodeRequest<'_>,
) -> Result<RawDecoded, DecodeError> {
    let corrupt = |e: image::ImageError| DecodeError::Corrupt(e.to_string());
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
