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
    if format == ImageFormat::WebP {
        webp_chunks_fit(data)?;
    }
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

/// Checks that every chunk of a WebP file's RIFF container fits in the file. The
/// `image-webp` decoder allocates a chunk's declared size before reading it (found by
/// `vtde-fuzz`: a 902-byte file whose EXIF chunk claims 2 GiB made `orientation()` allocate
/// 2 GiB), so a size larger than what is left is refused here, as a truncated file.
fn webp_chunks_fit(data: &[u8]) -> Result<(), DecodeError> {
    // "RIFF", its size, "WEBP", then chunks: a FourCC, a little-endian u32 size, the
    // data, and a pad byte when the size is odd.
    let mut at = 12;
    while let Some(header) = data.get(at..at + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let left = data.len() - (at + 8);
        if size > left {
            return Err(DecodeError::Truncated);
        }
        at += 8 + size + (size & 1);
    }
    Ok(())
}

#[cfg(test)]
mod webp_tests {
    use super::*;

    /// A RIFF/WEBP container with the given chunks.
    fn riff(chunks: &[(&[u8; 4], u32, &[u8])]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (fourcc, size, data) in chunks {
            body.extend_from_slice(*fourcc);
            body.extend_from_slice(&size.to_le_bytes());
            body.extend_from_slice(data);
        }
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&body);
        file
    }

    #[test]
    fn a_chunk_larger_than_the_file_is_refused_before_any_allocation() {
        // The fuzzer's finding, reduced: an EXIF chunk that claims 2 GiB with 4 bytes left.
        let file = riff(&[(b"VP8X", 2, &[0, 0]), (b"EXIF", 0x8000_001A, &[1, 2, 3, 4])]);
        assert!(matches!(
            webp_chunks_fit(&file),
            Err(DecodeError::Truncated)
        ));
        // Chunks that fit, with an odd size and its pad byte, are fine.
        let file = riff(&[(b"VP8X", 3, &[0, 0, 0, 0]), (b"EXIF", 2, &[1, 2])]);
        assert!(webp_chunks_fit(&file).is_ok());
    }
}
