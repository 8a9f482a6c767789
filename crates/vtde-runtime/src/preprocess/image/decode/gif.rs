//! GIF's first frame, composed on the logical screen as PIL does.

use std::io::Cursor;

use image::DynamicImage;

use super::request::{DecodeError, DecodeRequest, RawDecoded};

/// GIF's first frame as PIL opens it: a palette image of the screen's size, filled outside
/// the frame with the frame's transparent index (or index 0 when it has none, where the
/// `image` crate would leave transparent black), with the frame's local palette or the
/// global one. Returned as RGBA (the transparent index has alpha 0), which
/// [`crate::preprocess::image::to_rgb8`] composites as transformers does.
///
/// A GIF with no colour table at all (neither global nor local) is a greyscale image to
/// PIL (mode `L`, each index its grey level), and an error to the `gif` crate: it is read
/// from a copy given a global table of the 256 grey levels.
pub(crate) fn decode(data: &[u8], request: &DecodeRequest<'_>) -> Result<RawDecoded, DecodeError> {
    let with_grey_table;
    let data = match with_grey_global_table(data) {
        Some(patched) => {
            with_grey_table = patched;
            with_grey_table.as_slice()
        }
        None => data,
    };
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

/// A copy of a GIF without a global colour table, given one of the 256 grey levels (index
/// `i` is `(i, i, i)`): frames with their own table keep it, and frames without one get
/// what PIL gives them. `None` when the file has a global table (or no complete header).
fn with_grey_global_table(data: &[u8]) -> Option<Vec<u8>> {
    // "GIF89a", then the logical screen descriptor: width, height, flags at byte 10
    // (bit 7: a global table follows; bits 0-2: its size, 2^(n+1) entries).
    const FLAGS: usize = 10;
    const HEADER: usize = 13;
    if data.len() < HEADER || data[FLAGS] & 0x80 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() + 768);
    out.extend_from_slice(&data[..HEADER]);
    out[FLAGS] |= 0x80 | 0x07;
    out.extend((0..=255u8).flat_map(|i| [i, i, i]));
    out.extend_from_slice(&data[HEADER..]);
    Some(out)
}
