//! Pillow's `Image.resize` for 8-bit RGB images, bit for bit.
//!
//! transformers' PIL backend resizes with `PIL.Image.resize(size, resample)`, so
//! `pixel_values` can only match it if the resize reproduces Pillow's integer results.
//! `fast_image_resize` implements Pillow's filters, but always runs the vertical pass
//! first for 8-bit images and uses 16-bit coefficients with a wider kernel window: that
//! moved values by up to 14 levels (of 255) at edges with bicubic and changed about 15 %
//! of all values by one level with bilinear (measured against Pillow 13 on skimage's
//! test photos). This module ports Pillow 13's `Resample.c` 8-bit path instead, and
//! matches Pillow bit for bit on those photos and on the test fixtures:
//!
//! - coefficients as `precompute_coeffs` computes them (f64, the same rounding of the
//!   window bounds, the same filter functions including Hamming's float constants),
//!   then converted to 22-bit fixed point as `normalize_coeffs_8bpc` does;
//! - two passes in Pillow 13's order: horizontal first (only over the rows the vertical
//!   pass reads), except when the height loses more than twice as many pixels as the
//!   width, then vertical first; each pass rounds and clamps to 8 bits as `clip8` does;
//! - `NEAREST` as `ImagingScaleAffine` (source coordinates accumulated in f64).
//!
//! The arithmetic is exact integer arithmetic, so the order of the additions does not
//! matter, and the passes are written for SIMD: the vertical pass runs along rows (and
//! auto-vectorizes), and the horizontal pass works on blocks of 8 rows interleaved so
//! that one filter tap updates 24 contiguous accumulators (AVX2 intrinsics when the CPU
//! has AVX2, checked at run time; a portable version otherwise).
//!
//! Ported from Pillow (MIT-CMU licence, © 1997-2011 Secret Labs AB, © 1995-2011 Fredrik
//! Lundh and contributors, © 2010 Jeffrey A. Clark and contributors); the notice is in
//! `THIRD_PARTY.md` at the top of the repository.

use crate::manifest::ResampleFilter;

/// Fixed-point precision of the 8-bit path (`PRECISION_BITS` in Pillow).
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Rows interleaved per block in the horizontal pass.
const ROWS: usize = 8;
const LANES: usize = ROWS * 3;

fn box_filter(x: f64) -> f64 {
    if x > -0.5 && x <= 0.5 {
        1.0
    } else {
        0.0
    }
}

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn hamming_filter(x: f64) -> f64 {
    let x = x.abs();
    if x == 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let x = x * std::f64::consts::PI;
    // Pillow writes the constants as C floats (0.54f, 0.46f).
    x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
}

fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

fn sinc_filter(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

fn lanczos_filter(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc_filter(x) * sinc_filter(x / 3.0)
    } else {
        0.0
    }
}

/// A filter function, and its support, as in Pillow's `struct filter`.
type Filter = (fn(f64) -> f64, f64);

/// The convolution filter of a PIL filter (`None` for nearest, which has its own path).
fn filter(f: ResampleFilter) -> Option<Filter> {
    Some(match f {
        ResampleFilter::Nearest => return None,
        ResampleFilter::Box => (box_filter, 0.5),
        ResampleFilter::Bilinear => (bilinear_filter, 1.0),
        ResampleFilter::Hamming => (hamming_filter, 1.0),
        ResampleFilter::Bicubic => (bicubic_filter, 2.0),
        ResampleFilter::Lanczos => (lanczos_filter, 3.0),
    })
}

/// Fixed-point coefficients of one pass: for output `i`, the input window
/// `bounds[i].0 .. bounds[i].0 + bounds[i].1` and its weights `kk[i * ksize ..]`.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    kk: Vec<i32>,
}

/// `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the whole input range.
fn precompute(in_size: usize, out_size: usize, filter: fn(f64) -> f64, support: f64) -> Coeffs {
    // Pillow passes the box as C floats; whole sizes below 2^24 are exact.
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut kk = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    let ss = 1.0 / filterscale;
    for (xx, kk_row) in kk.chunks_exact_mut(ksize).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        // C's `(int)` truncates toward zero; negatives clamp to 0 either way.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).clamp(0, in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, w) in k.iter_mut().enumerate().take(n) {
            *w = filter((x as f64 + xmin as f64 - center + 0.5) * ss);
            ww += *w;
        }
        for (x, out) in kk_row.iter_mut().enumerate() {
            let mut w = if x < n { k[x] } else { 0.0 };
            if x < n && ww != 0.0 {
                w /= ww;
            }
            let scaled = w * f64::from(1u32 << PRECISION_BITS);
            *out = if w < 0.0 {
                (-0.5 + scaled) as i32
            } else {
                (0.5 + scaled) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs { ksize, bounds, kk }
}

/// Pillow's `clip8`: round (the half was added up front), shift, clamp.
#[inline(always)]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Copies rows `y..y + ROWS` (the last row repeated past `y1`), columns `x_lo..x_hi`,
/// into `block` interleaved: column `x` holds 8 rows × RGB at `(x - x_lo) * LANES`.
#[inline(always)]
fn fill_block(
    src: &[u8],
    stride: usize,
    y: usize,
    y1: usize,
    x_lo: usize,
    x_hi: usize,
    block: &mut [u8],
) {
    let last = y1 - 1;
    let rows_at: [&[u8]; ROWS] = std::array::from_fn(|r| {
        let yr = (y + r).min(last);
        &src[yr * stride + x_lo * 3..yr * stride + x_hi * 3]
    });
    for (x, dst) in block.chunks_exact_mut(LANES).take(x_hi - x_lo).enumerate() {
        let s = x * 3;
        for (r, row) in rows_at.iter().enumerate() {
            dst[r * 3..r * 3 + 3].copy_from_slice(&row[s..s + 3]);
        }
    }
}

/// The source columns a horizontal pass reads.
fn column_range(c: &Coeffs) -> (usize, usize) {
    let lo = c.bounds.iter().map(|b| b.0).min().unwrap_or(0);
    let hi = c.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(lo);
    (lo, hi.max(lo))
}

/// Horizontal pass over rows `y0..y1` of `src` (`src_w` RGB pixels per row) into `dst`
/// (`c.bounds.len()` pixels per row, `y1 - y0` rows). Portable version.
#[inline(always)]
fn horizontal_impl(src: &[u8], src_w: usize, y0: usize, y1: usize, c: &Coeffs, dst: &mut [u8]) {
    let out_w = c.bounds.len();
    let (x_lo, x_hi) = column_range(c);
    let mut block = vec![0u8; (x_hi - x_lo) * LANES];
    let mut y = y0;
    while y < y1 {
        let rows = (y1 - y).min(ROWS);
        fill_block(src, src_w * 3, y, y1, x_lo, x_hi, &mut block);
        for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
            let k = &c.kk[xx * c.ksize..xx * c.ksize + n];
            let mut acc = [HALF; LANES];
            let start = (xmin - x_lo) * LANES;
            let (window, _) = block[start..start + n * LANES].as_chunks::<LANES>();
            for (&kt, col) in k.iter().zip(window) {
                for (a, &v) in acc.iter_mut().zip(col) {
                    *a += i32::from(v) * kt;
                }
            }
            for r in 0..rows {
                let o = ((y - y0 + r) * out_w + xx) * 3;
                dst[o] = clip8(acc[r * 3]);
                dst[o + 1] = clip8(acc[r * 3 + 1]);
                dst[o + 2] = clip8(acc[r * 3 + 2]);
            }
        }
        y += rows;
    }
}

/// The horizontal pass with AVX2 intrinsics. LLVM vectorizes the portable version's tap
/// loop across taps (with byte gathers) instead of across the 24 lanes, which is 2-3×
/// slower; here each tap is three 8-lane `vpmulld`s. Same integer results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn horizontal_avx2(src: &[u8], src_w: usize, y0: usize, y1: usize, c: &Coeffs, dst: &mut [u8]) {
    use std::arch::x86_64::*;
    let out_w = c.bounds.len();
    let (x_lo, x_hi) = column_range(c);
    let mut block = vec![0u8; (x_hi - x_lo) * LANES];
    let half = _mm256_set1_epi32(HALF);
    let widen = |b: &[u8; 8]| _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(i64::from_le_bytes(*b)));
    // clip8 for 8 lanes: shift, then the saturating packs clamp to 0..=255.
    let clip = |a: __m256i| {
        let v = _mm256_srai_epi32::<22>(a);
        let b = _mm256_packus_epi16(_mm256_packs_epi32(v, v), _mm256_setzero_si256());
        let lo = _mm256_extract_epi32::<0>(b) as u32;
        let hi = _mm256_extract_epi32::<4>(b) as u32;
        (u64::from(hi) << 32 | u64::from(lo)).to_le_bytes()
    };
    let mut y = y0;
    while y < y1 {
        let rows = (y1 - y).min(ROWS);
        fill_block(src, src_w * 3, y, y1, x_lo, x_hi, &mut block);
        for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
            let k = &c.kk[xx * c.ksize..xx * c.ksize + n];
            let start = (xmin - x_lo) * LANES;
            let (window, _) = block[start..start + n * LANES].as_chunks::<8>();
            let (mut a0, mut a1, mut a2) = (half, half, half);
            for (&kt, col) in k.iter().zip(window.chunks_exact(3)) {
                let kv = _mm256_set1_epi32(kt);
                a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(widen(&col[0]), kv));
                a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(widen(&col[1]), kv));
                a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(widen(&col[2]), kv));
            }
            let mut lanes = [0u8; LANES];
            lanes[0..8].copy_from_slice(&clip(a0));
            lanes[8..16].copy_from_slice(&clip(a1));
            lanes[16..24].copy_from_slice(&clip(a2));
            for r in 0..rows {
                let o = ((y - y0 + r) * out_w + xx) * 3;
                dst[o..o + 3].copy_from_slice(&lanes[r * 3..r * 3 + 3]);
            }
        }
        y += rows;
    }
}

/// Vertical pass over source columns `cols.0..cols.1` of `src` (rows of `stride_px`
/// pixels): output row `i` reads source rows `c.bounds[i].0 - offset ..`; `dst` rows
/// hold `cols.1 - cols.0` pixels.
#[inline(always)]
fn vertical_impl(
    src: &[u8],
    stride_px: usize,
    cols: (usize, usize),
    offset: usize,
    c: &Coeffs,
    dst: &mut [u8],
) {
    let stride = stride_px * 3;
    let (lo, width) = (cols.0 * 3, (cols.1 - cols.0) * 3);
    let mut acc = vec![0i32; width];
    for (yy, &(ymin, n)) in c.bounds.iter().enumerate() {
        acc.fill(HALF);
        let k = &c.kk[yy * c.ksize..yy * c.ksize + n];
        for (t, &kt) in k.iter().enumerate() {
            let start = (ymin + t - offset) * stride + lo;
            for (a, &v) in acc.iter_mut().zip(&src[start..start + width]) {
                *a += i32::from(v) * kt;
            }
        }
        for (o, &a) in dst[yy * width..(yy + 1) * width].iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn vertical_avx2(
    src: &[u8],
    stride_px: usize,
    cols: (usize, usize),
    offset: usize,
    c: &Coeffs,
    dst: &mut [u8],
) {
    vertical_impl(src, stride_px, cols, offset, c, dst)
}

fn horizontal(src: &[u8], src_w: usize, y0: usize, y1: usize, c: &Coeffs, dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { horizontal_avx2(src, src_w, y0, y1, c, dst) };
        return;
    }
    horizontal_impl(src, src_w, y0, y1, c, dst)
}

fn vertical(
    src: &[u8],
    stride_px: usize,
    cols: (usize, usize),
    offset: usize,
    c: &Coeffs,
    dst: &mut [u8],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { vertical_avx2(src, stride_px, cols, offset, c, dst) };
        return;
    }
    vertical_impl(src, stride_px, cols, offset, c, dst)
}

/// Pillow's nearest-neighbour resize (`ImagingScaleAffine`): source coordinates start at
/// half a step and are accumulated in f64, then truncated. Only the window is produced.
fn nearest(src: &[u8], w: usize, h: usize, out_w: usize, out_h: usize, win: &Window) -> Vec<u8> {
    let table = |in_size: usize, out_size: usize| -> Vec<usize> {
        let a = in_size as f64 / out_size as f64;
        let mut pos = a * 0.5;
        (0..out_size)
            .map(|_| {
                let i = (pos.max(0.0) as usize).min(in_size - 1);
                pos += a;
                i
            })
            .collect()
    };
    let xs = table(w, out_w);
    let ys = table(h, out_h);
    let mut out = Vec::with_capacity(win.width() * win.height() * 3);
    for &sy in &ys[win.y0..win.y1] {
        let row = &src[sy * w * 3..(sy + 1) * w * 3];
        for &sx in &xs[win.x0..win.x1] {
            out.extend_from_slice(&row[sx * 3..sx * 3 + 3]);
        }
    }
    out
}

/// A rectangle of the resized image: columns `x0..x1`, rows `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Window {
    /// The whole `w × h` image.
    #[cfg(test)]
    pub fn full(w: usize, h: usize) -> Self {
        Window {
            x0: 0,
            y0: 0,
            x1: w,
            y1: h,
        }
    }

    /// Columns in the window.
    pub fn width(&self) -> usize {
        self.x1 - self.x0
    }

    /// Rows in the window.
    pub fn height(&self) -> usize {
        self.y1 - self.y0
    }
}

/// Resizes packed 8-bit RGB (`w × h`) to `out_w × out_h` exactly as Pillow's
/// `Image.resize(..., resample=filter)` does. Sizes must be non-zero and `src` must hold
/// `w * h * 3` bytes; otherwise `None`.
#[cfg(test)]
pub fn resize_rgb(
    src: &[u8],
    w: usize,
    h: usize,
    out_w: usize,
    out_h: usize,
    filter_kind: ResampleFilter,
) -> Option<Vec<u8>> {
    resize_rgb_window(
        src,
        w,
        h,
        out_w,
        out_h,
        filter_kind,
        Window::full(out_w, out_h),
    )
}

/// [`resize_rgb`], but only the `window` of the resized image is computed and returned
/// (`window.width() × window.height()` pixels). Every output pixel of Pillow's two passes
/// depends only on its own column's and row's coefficients, so the window is exactly the
/// corresponding crop of the full result; a center crop after the resize thus costs only
/// what it keeps. `None` for bad sizes or a window outside `out_w × out_h`.
pub fn resize_rgb_window(
    src: &[u8],
    w: usize,
    h: usize,
    out_w: usize,
    out_h: usize,
    filter_kind: ResampleFilter,
    win: Window,
) -> Option<Vec<u8>> {
    if w == 0
        || h == 0
        || out_w == 0
        || out_h == 0
        || src.len() != w.checked_mul(h)?.checked_mul(3)?
        || win.x0 >= win.x1
        || win.y0 >= win.y1
        || win.x1 > out_w
        || win.y1 > out_h
    {
        return None;
    }
    let need_h = out_w != w;
    let need_v = out_h != h;
    let Some((f, support)) = filter(filter_kind).filter(|_| need_h || need_v) else {
        if !need_h && !need_v {
            // Same size: Pillow copies; just cut the window.
            let mut out = Vec::with_capacity(win.width() * win.height() * 3);
            for y in win.y0..win.y1 {
                out.extend_from_slice(&src[(y * w + win.x0) * 3..(y * w + win.x1) * 3]);
            }
            return Some(out);
        }
        return Some(nearest(src, w, h, out_w, out_h, &win));
    };
    // Coefficients of the window's rows and columns only.
    let cv = need_v.then(|| {
        let mut c = precompute(h, out_h, f, support);
        c.bounds = c.bounds[win.y0..win.y1].to_vec();
        c.kk = c.kk[win.y0 * c.ksize..win.y1 * c.ksize].to_vec();
        c
    });
    let ch = need_h.then(|| {
        let mut c = precompute(w, out_w, f, support);
        c.bounds = c.bounds[win.x0..win.x1].to_vec();
        c.kk = c.kk[win.x0 * c.ksize..win.x1 * c.ksize].to_vec();
        c
    });
    // Pillow 13 runs the vertical pass first when the height loses more than twice as
    // many pixels as the width (`ImagingResampleInner`); the order changes the 8-bit
    // rounding in between, so it is followed.
    let (hi, wi) = (h as i64, w as i64);
    let horizontal_first = !(hi > out_h as i64 && hi - out_h as i64 > (wi - out_w as i64) * 2);
    let mut out = vec![0u8; win.width() * win.height() * 3];
    match (ch, cv) {
        (Some(ch), None) => horizontal(src, w, win.y0, win.y1, &ch, &mut out),
        (None, Some(cv)) => vertical(src, w, (win.x0, win.x1), 0, &cv, &mut out),
        (Some(ch), Some(cv)) if horizontal_first => {
            // Only the source rows the vertical pass reads go through the horizontal one.
            let (y_first, y_last) = row_range(&cv);
            let mut temp = vec![0u8; win.width() * (y_last - y_first) * 3];
            horizontal(src, w, y_first, y_last, &ch, &mut temp);
            vertical(&temp, win.width(), (0, win.width()), y_first, &cv, &mut out);
        }
        (Some(mut ch), Some(cv)) => {
            // Only the source columns the horizontal pass reads go through the vertical one.
            let (x_lo, x_hi) = column_range(&ch);
            let mut temp = vec![0u8; (x_hi - x_lo) * win.height() * 3];
            vertical(src, w, (x_lo, x_hi), 0, &cv, &mut temp);
            for b in &mut ch.bounds {
                b.0 -= x_lo;
            }
            horizontal(&temp, x_hi - x_lo, 0, win.height(), &ch, &mut out);
        }
        (None, None) => return None,
    }
    Some(out)
}

/// The source rows a vertical pass reads.
fn row_range(c: &Coeffs) -> (usize, usize) {
    column_range(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_images_stay_constant() {
        for f in [
            ResampleFilter::Nearest,
            ResampleFilter::Box,
            ResampleFilter::Bilinear,
            ResampleFilter::Hamming,
            ResampleFilter::Bicubic,
            ResampleFilter::Lanczos,
        ] {
            let src = [10u8, 200, 255].repeat(37 * 23);
            for (ow, oh) in [(5, 3), (100, 71), (37, 50), (12, 23)] {
                let out = resize_rgb(&src, 37, 23, ow, oh, f).unwrap();
                assert_eq!(out.len(), ow * oh * 3);
                assert!(
                    out.chunks(3).all(|p| p == [10, 200, 255]),
                    "{f:?} {ow}x{oh}"
                );
            }
        }
    }

    #[test]
    fn pillow_values_on_a_small_ramp() {
        // Pillow 13: Image.frombytes("RGB", (4, 1), ramp).resize((2, 1), BILINEAR) on the
        // grey ramp 0, 85, 170, 255 gives 61, 194: output 0 is centred on 1.0 with the
        // triangle widened to support 2, weights 0.75, 0.75, 0.25 over inputs 0..3, so
        // (85 * 0.75 + 170 * 0.25) / 1.75 = 60.7.
        let src: Vec<u8> = [0u8, 85, 170, 255]
            .iter()
            .flat_map(|&v| [v, v, v])
            .collect();
        let out = resize_rgb(&src, 4, 1, 2, 1, ResampleFilter::Bilinear).unwrap();
        assert_eq!(out, vec![61, 61, 61, 194, 194, 194]);
        // Nearest picks source columns floor(0.5 * 2) = 1 and floor(1.5 * 2) = 3.
        let out = resize_rgb(&src, 4, 1, 2, 1, ResampleFilter::Nearest).unwrap();
        assert_eq!(out, vec![85, 85, 85, 255, 255, 255]);
    }

    #[test]
    fn a_window_is_the_crop_of_the_full_result() {
        // A pseudo-random image; every filter, up and down, several windows.
        let (w, h) = (53, 41);
        let src: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i * 2_654_435_761usize) >> 13) as u8)
            .collect();
        for f in [
            ResampleFilter::Nearest,
            ResampleFilter::Box,
            ResampleFilter::Bilinear,
            ResampleFilter::Hamming,
            ResampleFilter::Bicubic,
            ResampleFilter::Lanczos,
        ] {
            // (50, 13) and (60, 20) take Pillow's vertical-first order.
            for (ow, oh) in [(17, 13), (120, 90), (53, 20), (30, 41), (50, 13), (60, 20)] {
                let full = resize_rgb(&src, w, h, ow, oh, f).unwrap();
                for win in [
                    Window::full(ow, oh),
                    Window {
                        x0: 3,
                        y0: 2,
                        x1: ow - 1,
                        y1: oh - 3,
                    },
                    Window {
                        x0: ow / 2,
                        y0: 0,
                        x1: ow / 2 + 1,
                        y1: 1,
                    },
                ] {
                    let got = resize_rgb_window(&src, w, h, ow, oh, f, win).unwrap();
                    let mut want = Vec::new();
                    for y in win.y0..win.y1 {
                        want.extend_from_slice(&full[(y * ow + win.x0) * 3..(y * ow + win.x1) * 3]);
                    }
                    assert_eq!(got, want, "{f:?} {ow}x{oh} {win:?}");
                }
            }
        }
        let bad = Window {
            x0: 0,
            y0: 0,
            x1: 18,
            y1: 1,
        };
        assert!(resize_rgb_window(&src, w, h, 17, 13, ResampleFilter::Bilinear, bad).is_none());
    }

    #[test]
    fn portable_and_dispatched_passes_agree() {
        let (w, h) = (67, 29);
        let src: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i * 2_654_435_761usize) >> 11) as u8)
            .collect();
        for f in [
            ResampleFilter::Bicubic,
            ResampleFilter::Lanczos,
            ResampleFilter::Bilinear,
        ] {
            let (func, support) = filter(f).unwrap();
            for out_w in [5, 30, 67 * 2 + 1] {
                let mut c = precompute(w, out_w, func, support);
                // A window of the columns, as the preprocessor uses it.
                c.bounds = c.bounds[1..].to_vec();
                c.kk = c.kk[c.ksize..].to_vec();
                let (y0, y1) = (3, h - 2);
                let mut a = vec![0u8; c.bounds.len() * (y1 - y0) * 3];
                let mut b = a.clone();
                horizontal_impl(&src, w, y0, y1, &c, &mut a);
                horizontal(&src, w, y0, y1, &c, &mut b);
                assert_eq!(a, b, "{f:?} {out_w}");
                let cv = precompute(y1 - y0, 7, func, support);
                let cols = (1, c.bounds.len());
                let mut va = vec![0u8; (cols.1 - cols.0) * 3 * 7];
                let mut vb = va.clone();
                vertical_impl(&a, c.bounds.len(), cols, 0, &cv, &mut va);
                vertical(&a, c.bounds.len(), cols, 0, &cv, &mut vb);
                assert_eq!(va, vb);
            }
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(resize_rgb(&[0; 12], 2, 2, 0, 1, ResampleFilter::Bilinear).is_none());
        assert!(resize_rgb(&[0; 11], 2, 2, 1, 1, ResampleFilter::Bilinear).is_none());
        assert!(resize_rgb(&[], 0, 0, 1, 1, ResampleFilter::Bilinear).is_none());
    }

    #[test]
    fn overshoot_is_clamped() {
        // Bicubic and Lanczos ring past 0 and 255 at a hard edge.
        let mut src = vec![0u8; 16 * 3];
        for v in &mut src[8 * 3..] {
            *v = 255;
        }
        for f in [ResampleFilter::Bicubic, ResampleFilter::Lanczos] {
            let out = resize_rgb(&src, 16, 1, 40, 1, f).unwrap();
            assert_eq!(out[0], 0);
            assert_eq!(out[out.len() - 1], 255);
        }
    }
}
