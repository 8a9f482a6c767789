//! TIFF (first page) as PIL reads it: 8-bit CMYK converted with PIL's formula and 8-bit
//! palette images expanded with their ColorMap, both of which the `image` crate gets
//! wrong or refuses; every other TIFF goes to the `image` crate ([`super::generic`]).

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat};

use super::generic;
use super::request::{DecodeError, DecodeRequest, RawDecoded};
use crate::preprocess::image::colour::cmyk_to_rgb;

/// Decodes a TIFF's first image.
pub(crate) fn decode(data: &[u8], request: &DecodeRequest<'_>) -> Result<RawDecoded, DecodeError> {
    if let Some(result) = decode_cmyk(data, request) {
        return result;
    }
    if let Some(result) = decode_palette(data, request) {
        return result;
    }
    generic::decode(data, ImageFormat::Tiff, request)
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
fn decode_cmyk(
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
fn decode_palette(
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
