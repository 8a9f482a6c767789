//! Converting decoded images to 8-bit RGB exactly as PIL and transformers do:
//! transformers' `convert_to_rgb` (alpha composited on white with Pillow's integer
//! arithmetic, `convert("RGB")` otherwise, PIL's mapping of 16-bit images), and PIL's
//! CMYK → RGB formula for the decoders of CMYK JPEGs and TIFFs.

use std::borrow::Cow;

use image::{DynamicImage, ImageBuffer, RgbImage};

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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayAlphaImage, GrayImage, Luma, LumaA, Rgb, Rgba, RgbaImage};

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
    fn cmyk_conversion_follows_pillow() {
        assert_eq!(cmyk_to_rgb([0, 0, 0, 0]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb([200, 17, 0, 255]), [0, 0, 0]);
        assert_eq!(cmyk_to_rgb([255, 0, 0, 0]), [0, 255, 255]);
        // 255 - 40 = 215; 215 - round(100 * 215 / 255) = 215 - 84 = 131.
        assert_eq!(cmyk_to_rgb([100, 0, 0, 40]), [131, 215, 215]);
    }
}
