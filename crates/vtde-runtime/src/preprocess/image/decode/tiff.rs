//! TIFF (first page) as PIL reads it: 8-bit CMYK converted with PIL's formula, 8-bit
//! palette images expanded with their ColorMap, and one-sample images of signed integers
//! or floats converted as PIL converts its `I` and `F` modes, all of which the `image`
//! crate gets wrong or refuses; every other TIFF goes to the `image` crate
//! ([`super::generic`]).

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat};

use super::generic;
use super::request::{DecodeError, DecodeRequest, RawDecoded};
use crate::preprocess::image::colour::cmyk_to_rgb;

/// Decodes a TIFF's first image.
pub(crate) fn decode(data: &[u8], request: &DecodeRequest<'_>) -> Result<RawDecoded, DecodeError> {
    if !first_ifd_values_fit(data) {
        return Err(DecodeError::Corrupt(
            "a TIFF tag of the first image claims more bytes than the file holds".into(),
        ));
    }
    if let Some(result) = decode_cmyk(data, request) {
        return result;
    }
    if let Some(result) = decode_palette(data, request) {
        return result;
    }
    if let Some(result) = decode_signed_or_float(data, request) {
        return result;
    }
    generic::decode(data, ImageFormat::Tiff, request)
}

/// One-sample TIFFs of signed integers or IEEE floats (SampleFormat 2 or 3), which the
/// `image` crate refuses, read as PIL reads them (`TiffImagePlugin.OPEN_INFO`) and
/// brought to 8-bit grey as its `convert("RGB")` does (`libImaging/Convert.c`):
///
/// - signed 8-bit, BlackIsZero: PIL's raw mode `L`, the bytes as they are (a two's
///   complement -1 is 255);
/// - signed 16- and 32-bit, BlackIsZero: PIL's mode `I` (`I;16S`, `I;32S`), converted by
///   `i2rgb`: clamped to 0..=255;
/// - 32-bit float, BlackIsZero or WhiteIsZero (PIL does not invert either): mode `F`,
///   converted through `L` by `f2l`: clamped to 0..=255 and truncated (NaN gives 0).
///
/// `None` when the file is not such a TIFF, or is one PIL does not open either (other
/// photometric interpretations, 64-bit floats), so that the generic path refuses it.
fn decode_signed_or_float(
    data: &[u8],
    request: &DecodeRequest<'_>,
) -> Option<Result<RawDecoded, DecodeError>> {
    use tiff::decoder::DecodingResult;
    use tiff::tags::Tag;
    // The `tiff` crate needs a PhotometricInterpretation tag, which PIL does not: a file
    // without one is read from a copy that has one (BlackIsZero, which for the floats
    // PIL reads without it gives the same values).
    let patched;
    let data = match tiff::decoder::Decoder::new(Cursor::new(data)) {
        Ok(_) => data,
        Err(_) => {
            patched = with_photometric_tag(data, 1)?;
            patched.as_slice()
        }
    };
    let mut decoder = tiff::decoder::Decoder::new(Cursor::new(data)).ok()?;
    let unsigned = |d: &mut tiff::decoder::Decoder<_>, tag| {
        d.find_tag_unsigned_vec::<u16>(tag)
            .ok()
            .flatten()
            .and_then(|v| v.first().copied())
    };
    let format = unsigned(&mut decoder, Tag::SampleFormat)?;
    let samples = unsigned(&mut decoder, Tag::SamplesPerPixel).unwrap_or(1);
    let bits = unsigned(&mut decoder, Tag::BitsPerSample).unwrap_or(1);
    let photometric = unsigned(&mut decoder, Tag::PhotometricInterpretation)?;
    let opened_by_pil = samples == 1
        && match (format, bits) {
            (2, 8 | 16 | 32) => photometric == 1,
            (3, 32) => photometric <= 1,
            _ => false,
        };
    if !opened_by_pil {
        return None;
    }
    let result = read_tiff_image(decoder, request, u64::from(bits / 8)).and_then(
        |(result, (width, height), orientation)| {
            let grey: Vec<u8> = match result {
                DecodingResult::I8(v) => v.into_iter().map(|x| x as u8).collect(),
                DecodingResult::I16(v) => v.into_iter().map(|x| x.clamp(0, 255) as u8).collect(),
                DecodingResult::I32(v) => v.into_iter().map(|x| x.clamp(0, 255) as u8).collect(),
                // `as` saturates (and maps NaN to 0) as f2l's comparisons do.
                DecodingResult::F32(v) => v.into_iter().map(|x| x as u8).collect(),
                _ => {
                    return Err(DecodeError::Unsupported(format!(
                        "TIFF with {bits}-bit samples of format {format}"
                    )))
                }
            };
            let image = image::GrayImage::from_raw(width, height, grey).ok_or_else(|| {
                DecodeError::Corrupt("TIFF with fewer samples than pixels".into())
            })?;
            Ok(RawDecoded {
                image: DynamicImage::ImageLuma8(image),
                full_size: (width, height),
                orientation,
            })
        },
    );
    Some(result)
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
    decoder: tiff::decoder::Decoder<R>,
    request: &DecodeRequest<'_>,
    channels: u64,
    what: &str,
) -> Result<TiffSamples, DecodeError> {
    let (result, size, orientation) = read_tiff_image(decoder, request, channels)?;
    let tiff::decoder::DecodingResult::U8(samples) = result else {
        return Err(DecodeError::Corrupt(format!(
            "{what} without 8-bit samples"
        )));
    };
    Ok(TiffSamples {
        samples,
        size,
        orientation,
    })
}

/// Decoded samples (any sample type), `(width, height)`, and the orientation to apply.
type TiffImage = (
    tiff::decoder::DecodingResult,
    (u32, u32),
    Option<Orientation>,
);

/// A TIFF's first image as the `tiff` crate decodes it (any sample type), its size
/// (checked against the pixel limit before decoding) and its EXIF orientation when asked
/// for. `bytes_per_pixel` sizes the decoder's buffer limit.
fn read_tiff_image<R: std::io::Read + std::io::Seek>(
    mut decoder: tiff::decoder::Decoder<R>,
    request: &DecodeRequest<'_>,
    bytes_per_pixel: u64,
) -> Result<TiffImage, DecodeError> {
    let corrupt = |e: tiff::TiffError| DecodeError::Corrupt(e.to_string());
    let (width, height) = decoder.dimensions().map_err(corrupt)?;
    request.check_size(width, height)?;
    // The size is within the pixel limit: let the decoder allocate what it needs.
    let mut limits = tiff::decoder::Limits::default();
    limits.decoding_buffer_size =
        usize::try_from(u64::from(width) * u64::from(height) * bytes_per_pixel)
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
    let result = decoder.read_image().map_err(corrupt)?;
    Ok((result, (width, height), orientation))
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

/// A classic (not Big) TIFF's bytes, read in the file's byte order: what the patches
/// and checks below need of its header and first IFD.
struct ClassicTiff<'a> {
    data: &'a [u8],
    little: bool,
}

impl<'a> ClassicTiff<'a> {
    /// `None` unless `data` starts with a classic TIFF header.
    fn new(data: &'a [u8]) -> Option<Self> {
        let little = match data.get(..4)? {
            [b'I', b'I', 42, 0] => true,
            [b'M', b'M', 0, 42] => false,
            _ => return None,
        };
        Some(ClassicTiff { data, little })
    }

    /// The unsigned integer of `n` bytes (at most 8) at `at`.
    fn uint(&self, at: usize, n: usize) -> Option<u64> {
        let bytes = self.data.get(at..at.checked_add(n)?)?;
        Some(bytes.iter().enumerate().fold(0u64, |v, (i, &b)| {
            let shift = if self.little { 8 * i } else { 8 * (n - 1 - i) };
            v | (u64::from(b) << shift)
        }))
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        self.uint(at, 2).and_then(|v| u16::try_from(v).ok())
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        self.uint(at, 4).and_then(|v| u32::try_from(v).ok())
    }

    /// The offset of the first IFD and its number of entries.
    fn first_ifd(&self) -> Option<(usize, usize)> {
        let ifd = usize::try_from(self.u32_at(4)?).ok()?;
        Some((ifd, usize::from(self.u16_at(ifd)?)))
    }

    fn u16_bytes(&self, v: u16) -> [u8; 2] {
        if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }

    fn u32_bytes(&self, v: u32) -> [u8; 4] {
        if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }
}

/// A copy of a classic TIFF whose first IFD has no PhotometricInterpretation tag (262),
/// with one of value `value` added: the IFD is rewritten, with the tag in its sorted
/// place, at the end of the copy, and the header points to it (everything else stays
/// where it is, so every offset in the file stays valid). `None` for anything else
/// (BigTIFF, a tag already there, a truncated IFD).
fn with_photometric_tag(data: &[u8], value: u16) -> Option<Vec<u8>> {
    let tiff = ClassicTiff::new(data)?;
    let (ifd, count) = tiff.first_ifd()?;
    let entries_start = ifd.checked_add(2)?;
    let entries_end = entries_start.checked_add(count.checked_mul(12)?)?;
    let entries = data.get(entries_start..entries_end)?;
    let next_ifd = data.get(entries_end..entries_end.checked_add(4)?)?;
    let tags: Vec<u16> = (0..count)
        .map(|i| tiff.u16_at(entries_start + 12 * i))
        .collect::<Option<_>>()?;
    if tags.contains(&262) {
        return None;
    }
    let mut out = data.to_vec();
    // IFDs start on a word boundary.
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let new_ifd = u32::try_from(out.len()).ok()?;
    out.extend_from_slice(&tiff.u16_bytes(u16::try_from(count + 1).ok()?));
    // Tag 262, type SHORT (3), count 1, the value in the first 2 bytes of the field.
    let mut photometric = Vec::with_capacity(12);
    photometric.extend_from_slice(&tiff.u16_bytes(262));
    photometric.extend_from_slice(&tiff.u16_bytes(3));
    photometric.extend_from_slice(&tiff.u32_bytes(1));
    photometric.extend_from_slice(&tiff.u16_bytes(value));
    photometric.extend_from_slice(&[0, 0]);
    let at = tags.iter().position(|&t| t > 262).unwrap_or(count);
    out.extend_from_slice(&entries[..12 * at]);
    out.extend_from_slice(&photometric);
    out.extend_from_slice(&entries[12 * at..]);
    out.extend_from_slice(next_ifd);
    out[4..8].copy_from_slice(&tiff.u32_bytes(new_ifd));
    Some(out)
}

/// Where IFD0 of a classic TIFF keeps its PhotometricInterpretation value, if that value
/// is RGB palette (3): the byte offset of the 2-byte value. `None` for anything else
/// (BigTIFF, other interpretations, truncated headers).
fn tiff_palette_photometric_offset(data: &[u8]) -> Option<usize> {
    let tiff = ClassicTiff::new(data)?;
    let (ifd, entries) = tiff.first_ifd()?;
    (0..entries).find_map(|i| {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        // Tag 262, type SHORT (3), count 1: the value sits in the first two bytes of the
        // value field.
        (tiff.u16_at(entry)? == 262 && tiff.u16_at(entry + 2)? == 3 && tiff.u32_at(entry + 4)? == 1)
            .then_some(entry + 8)
            .filter(|&at| tiff.u16_at(at) == Some(3))
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

/// Whether every entry of a classic TIFF's first IFD holds at most as many bytes as the
/// file has. The `tiff` crate refuses an over-long entry too, but first prints it to
/// stderr with a leftover `dbg!` (tiff 0.11.3, `decoder/ifd.rs`; found by `vtde-fuzz`: an
/// ASCII BitsPerSample with count 0x7fffffff), and vtde's stderr holds one line per
/// problem. Anything this cannot read (BigTIFF, a truncated header) is left to the decoders.
fn first_ifd_values_fit(data: &[u8]) -> bool {
    let Some(tiff) = ClassicTiff::new(data) else {
        return true;
    };
    let Some((ifd, entries)) = tiff.first_ifd() else {
        return true;
    };
    (0..entries).all(|i| {
        let entry = ifd + 2 + 12 * i;
        let (Some(kind), Some(count)) = (tiff.uint(entry + 2, 2), tiff.uint(entry + 4, 4)) else {
            return true;
        };
        // Bytes per value of TIFF's types 1..=18 (unknown types: 1, the least).
        let size = match kind {
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 | 16 | 17 | 18 => 8,
            _ => 1,
        };
        count.saturating_mul(size) <= data.len() as u64
    })
}

#[cfg(test)]
mod ifd_tests {
    use super::first_ifd_values_fit;

    /// A little-endian TIFF header and one IFD entry.
    fn tiff(tag: u16, kind: u16, count: u32) -> Vec<u8> {
        let mut d = b"II*\0".to_vec();
        d.extend_from_slice(&8u32.to_le_bytes());
        d.extend_from_slice(&1u16.to_le_bytes());
        d.extend_from_slice(&tag.to_le_bytes());
        d.extend_from_slice(&kind.to_le_bytes());
        d.extend_from_slice(&count.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d
    }

    #[test]
    fn an_entry_longer_than_the_file_is_caught_before_the_tiff_crate() {
        // The fuzzer's finding: BitsPerSample (258) retyped ASCII (2), count 0x7fffffff.
        assert!(!first_ifd_values_fit(&tiff(258, 2, 0x7fff_ffff)));
        // Three SHORTs fit in a 26-byte file; 20 LONGs (80 bytes) do not.
        assert!(first_ifd_values_fit(&tiff(258, 3, 3)));
        assert!(!first_ifd_values_fit(&tiff(273, 4, 20)));
        // Not a classic TIFF: left to the decoders.
        assert!(first_ifd_values_fit(b"II+\0"));
    }
}
