//! Image decoding and preprocessing against PIL and transformers (the recordings of
//! `tools/make_image_fixtures.py` in `tests/fixtures/images`): every format and mode,
//! every filter, odd sizes, EXIF orientation both ways; then limits, the parallel batch
//! API, and a corpus of broken files.
//!
//! Targets (docs/design.md): decoded RGB identical to PIL's; `pixel_values` within ±1 level of
//! 255 of transformers' PIL-backend processors, mean ≤ 0.02 levels. Run with
//! `--nocapture` to see the measured differences.

// Helpers outside #[test] functions unwrap too: a failure there is the test's failure.
#![allow(clippy::unwrap_used)]

mod image_fixtures;

use std::path::{Path, PathBuf};

use image_fixtures as fx;
use ndarray::{Array3, Axis};
use vtde_runtime::manifest::ImagePreprocess;
use vtde_runtime::{decode_image, read_image, to_rgb8, Error, ImageOptions, ImagePreprocessor};

const MAX_LEVELS: f32 = 1.0;
const MEAN_LEVELS: f32 = 0.02;

fn preprocessor(cases: &fx::Cases, name: &str) -> (ImagePreprocessor, ImagePreprocess) {
    let config = cases.processors[name].image.clone();
    (ImagePreprocessor::new(&config), config)
}

fn pixel_values(p: &ImagePreprocessor, path: &Path, options: &ImageOptions) -> Array3<f32> {
    let (h, w) = p.output_size();
    let mut out = Array3::zeros((3, h as usize, w as usize));
    p.preprocess_file(path, options, out.view_mut())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

#[test]
fn decoded_rgb_matches_pil_for_every_file() {
    let cases = fx::cases();
    let mut failures = Vec::new();
    for case in &cases.decode {
        let result = read_image(fx::file(&case.file), &ImageOptions::default());
        if let Some(why) = &case.vtde_unsupported {
            // Known gaps must fail cleanly, naming the file.
            let Err(err) = result else {
                panic!("{}: an unsupported variant decoded", case.file)
            };
            assert!(matches!(err, Error::ImageDecode { .. }), "{err}");
            println!("{:28} unsupported ({why}): {err}", case.file);
            continue;
        }
        let image = match result {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{}: {e}", case.file));
                continue;
            }
        };
        let ours = to_rgb8(&image);
        let theirs = fx::recorded_rgb(&case.rgb);
        if ours.dimensions() != theirs.dimensions() {
            failures.push(format!(
                "{}: size {:?}, PIL {:?}",
                case.file,
                ours.dimensions(),
                theirs.dimensions()
            ));
            continue;
        }
        let (max, mean, frac) = fx::rgb_diff(&ours, &theirs);
        println!(
            "{:28} {:5} {:5} max {max:3} mean {mean:.4} differing {frac:.4}",
            case.file, case.format, case.pil_mode
        );
        if max > 0 {
            failures.push(format!(
                "{} ({} {}): max {max}, mean {mean:.4}",
                case.file, case.format, case.pil_mode
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "differences from PIL:\n{}",
        failures.join("\n")
    );
}

#[test]
fn pillow_test_images_decode_as_pil_does() {
    // Pillow's own test images that vtde once refused (float and signed TIFFs, a GIF
    // without a colour table, a BMP with a bad planes field): equal to PIL's decoding.
    let cases = fx::pillow_cases();
    let mut decoded = 0;
    for case in &cases.decode {
        let result = read_image(fx::pillow_file(&case.file), &ImageOptions::default());
        if let Some(why) = &case.vtde_unsupported {
            let Err(err) = result else {
                panic!("{}: an unsupported file decoded", case.file)
            };
            assert!(matches!(err, Error::ImageDecode { .. }), "{err}");
            assert!(err.to_string().contains(&case.file), "{err}");
            println!("{:32} unsupported ({why}): {err}", case.file);
            continue;
        }
        let image = result.unwrap_or_else(|e| panic!("{} ({}): {e}", case.file, case.note));
        let ours = to_rgb8(&image);
        let theirs = fx::recorded_rgb(&format!("pillow/{}", case.rgb));
        assert_eq!(
            ours.dimensions(),
            (case.size[0], case.size[1]),
            "{}",
            case.file
        );
        let (max, mean, _) = fx::rgb_diff(&ours, &theirs);
        println!(
            "{:32} {:4} {:3} max {max} mean {mean:.4}",
            case.file, case.format, case.pil_mode
        );
        assert_eq!(ours.into_owned(), theirs, "{} ({})", case.file, case.note);
        decoded += 1;
    }
    assert!(decoded >= 6, "{decoded}");
}

#[test]
fn every_format_and_mode_gives_transformers_pixel_values() {
    let cases = fx::cases();
    let tensors = fx::Tensors::load();
    let mut failures = Vec::new();
    for case in cases.decode.iter().filter(|c| c.vtde_unsupported.is_none()) {
        let (p, config) = preprocessor(&cases, &case.pixel_values.processor);
        let ours = pixel_values(&p, &fx::file(&case.file), &ImageOptions::default());
        let theirs = tensors.get3(&case.pixel_values.tensor);
        let (max, mean) = fx::level_diff(ours.view(), theirs.view(), &config);
        println!("{:28} max {max:.3} levels, mean {mean:.4}", case.file);
        if max > MAX_LEVELS || mean > MEAN_LEVELS {
            failures.push(format!("{}: max {max} levels, mean {mean}", case.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_filter_and_odd_size_gives_transformers_pixel_values() {
    let cases = fx::cases();
    let tensors = fx::Tensors::load();
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for case in &cases.filters {
        let (p, config) = preprocessor(&cases, &case.processor);
        if let Some(r) = &config.resize {
            seen.insert(format!("{:?}", r.filter));
        }
        let ours = pixel_values(&p, &fx::file(&case.file), &ImageOptions::default());
        let theirs = tensors.get3(&case.tensor);
        let (max, mean) = fx::level_diff(ours.view(), theirs.view(), &config);
        println!(
            "{:18} {:18} max {max:.3} levels, mean {mean:.4}",
            case.processor, case.file
        );
        if max > MAX_LEVELS || mean > MEAN_LEVELS {
            failures.push(format!(
                "{} on {}: max {max} levels, mean {mean}",
                case.processor, case.file
            ));
        }
    }
    assert_eq!(seen.len(), 6, "every PIL filter is recorded: {seen:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exif_orientation_is_ignored_by_default_and_applied_on_request() {
    let cases = fx::cases();
    let apply = ImageOptions::default().with_exif_orientation(true);
    let oriented: Vec<_> = cases
        .decode
        .iter()
        .filter(|c| c.exif_orientation.is_some())
        .collect();
    assert!(oriented.len() >= 10, "orientation fixtures missing");
    let mut rotated = 0;
    for case in oriented {
        let path = fx::file(&case.file);
        let stored = read_image(&path, &ImageOptions::default()).expect("decodes");
        assert_eq!(
            to_rgb8(&stored).into_owned(),
            fx::recorded_rgb(&case.rgb),
            "{}: default must match PIL.Image.open",
            case.file
        );
        let upright = read_image(&path, &apply).expect("decodes");
        let expected = fx::recorded_rgb(case.rgb_exif.as_deref().expect("recorded"));
        assert_eq!(
            to_rgb8(&upright).into_owned(),
            expected,
            "{}: must match ImageOps.exif_transpose",
            case.file
        );
        rotated += usize::from(upright.width() != stored.width());
    }
    assert!(rotated >= 4, "orientations 5-8 swap the axes");
}

#[test]
fn exif_orientation_reaches_the_pixel_values() {
    // An image rotated by 90 degrees gives different pixel_values than the stored one;
    // with the option, the same as preprocessing the upright recording.
    let cases = fx::cases();
    let (p, _) = preprocessor(&cases, "vit_bilinear");
    let case = cases
        .decode
        .iter()
        .find(|c| c.file == "exif_6.jpg")
        .expect("fixture");
    let apply = ImageOptions::default().with_exif_orientation(true);
    let ours = pixel_values(&p, &fx::file(&case.file), &apply);
    let upright = vtde_runtime::image::DynamicImage::ImageRgb8(fx::recorded_rgb(
        case.rgb_exif.as_deref().expect("recorded"),
    ));
    let mut want = Array3::zeros(ours.raw_dim());
    p.preprocess_into(&upright, want.view_mut())
        .expect("preprocess");
    assert_eq!(ours, want);
    let stored = pixel_values(&p, &fx::file(&case.file), &ImageOptions::default());
    assert_ne!(ours, stored);
}

#[test]
fn pixel_limit_is_checked_before_decoding_and_configurable() {
    let dir = tempfile::tempdir().unwrap();
    // A real 71x53 JPEG is refused under a 1000-pixel limit, with the numbers.
    let tight = ImageOptions::default().with_max_pixels(1000);
    for name in [
        "jpeg_420.jpg",
        "png_rgb8.png",
        "webp_lossy.webp",
        "tiff_cmyk.tif",
    ] {
        let Err(err) = read_image(fx::file(name), &tight) else {
            panic!("{name} decoded")
        };
        match &err {
            Error::ImageTooLarge {
                width,
                height,
                max_pixels,
                ..
            } => assert_eq!((*width, *height, *max_pixels), (71, 53, 1000), "{name}"),
            other => panic!("{name}: {other}"),
        }
        assert!(err.to_string().contains("71x53"), "{err}");
    }
    // The default admits 100-megapixel photos: a JPEG claiming 12000x9000 passes the
    // limit check and then fails only because its data ends.
    let path = dir.path().join("header_only.jpg");
    std::fs::write(&path, jpeg_header(12_000, 9_000)).unwrap();
    match read_image(&path, &ImageOptions::default()) {
        Err(err) => assert!(
            matches!(err, Error::ImageDecode { .. }) && err.to_string().contains("truncated"),
            "100 MP must pass the limit: {err}"
        ),
        Ok(image) => panic!("decoded a {}x{} image", image.width(), image.height()),
    }
    // ... and so does the default limit itself.
    const { assert!(vtde_runtime::DEFAULT_MAX_PIXELS >= 100_000_000) };
}

#[test]
fn parallel_batch_matches_one_at_a_time_and_reports_failures_in_place() {
    let cases = fx::cases();
    let (p, _) = preprocessor(&cases, "clip_bicubic_16");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jpg");
    std::fs::write(&bad, b"not an image").unwrap();
    let mut paths: Vec<PathBuf> = cases
        .decode
        .iter()
        .filter(|c| c.vtde_unsupported.is_none())
        .map(|c| fx::file(&c.file))
        .collect();
    paths.insert(3, bad.clone());
    paths.push(dir.path().join("missing.png"));
    for threads in [1, 2, 5] {
        let options = ImageOptions::default().with_decode_threads(threads);
        // Batches of 4: the failures land in different batches.
        let mut batches = Vec::new();
        p.stream_files(&paths, &options, 4, |batch| {
            batches.push(batch);
            Ok::<(), vtde_runtime::Error>(())
        })
        .unwrap();
        assert_eq!(batches.len(), paths.len().div_ceil(4));
        let mut seen = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let pixels = batch.pixel_values();
            assert_eq!(pixels.len_of(Axis(0)), batch.items.len());
            for (row, &i) in batch.items.iter().enumerate() {
                let one = pixel_values(&p, &paths[i], &ImageOptions::default());
                assert_eq!(pixels.index_axis(Axis(0), row), one);
                seen.push(i);
            }
            for (i, e) in &batch.failures {
                let path = &paths[*i];
                assert!(path == &bad || !path.exists(), "{e}");
                assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
                seen.push(*i);
            }
            // Each batch holds exactly its run of consecutive inputs, each once.
            assert!(batch
                .items
                .iter()
                .chain(batch.failures.iter().map(|(i, _)| i))
                .all(|&i| i / 4 == b));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..paths.len()).collect::<Vec<_>>());
        let failed: usize = batches.iter().map(|b| b.failures.len()).sum();
        assert_eq!(failed, 2);
    }
    let empty: [&Path; 0] = [];
    let mut calls = 0;
    p.stream_files(&empty, &ImageOptions::default(), 4, |_| {
        calls += 1;
        Ok::<(), vtde_runtime::Error>(())
    })
    .unwrap();
    assert_eq!(calls, 0);
}

#[test]
fn bytes_and_files_decode_alike() {
    for name in [
        "jpeg_cmyk.jpg",
        "png_palette_trns.png",
        "gif_animated.gif",
        "webp_lossy_alpha.webp",
    ] {
        let path = fx::file(name);
        let from_file = read_image(&path, &ImageOptions::default()).unwrap();
        let from_bytes =
            decode_image(&std::fs::read(&path).unwrap(), &ImageOptions::default()).unwrap();
        assert_eq!(from_file, from_bytes, "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Broken and odd files

/// The start of a baseline JPEG of `width x height` (3 components, 4:2:0): SOI, a
/// quantization table, SOF0, one-code Huffman tables, SOS and a few bytes of scan data,
/// then nothing (no EOI): a decoder reads the size, starts decoding and runs out of data.
fn jpeg_header(width: u16, height: u16) -> Vec<u8> {
    let mut j = vec![0xff, 0xd8];
    j.extend_from_slice(&[0xff, 0xdb, 0x00, 0x43, 0x00]);
    j.extend_from_slice(&[1u8; 64]);
    j.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08]);
    j.extend_from_slice(&height.to_be_bytes());
    j.extend_from_slice(&width.to_be_bytes());
    j.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]);
    // DHT: DC table 0 and AC table 0, each one code of length 1 for symbol 0.
    for class in [0x00u8, 0x10] {
        j.extend_from_slice(&[0xff, 0xc4, 0x00, 0x14, class, 1]);
        j.extend_from_slice(&[0u8; 15]);
        j.push(0);
    }
    j.extend_from_slice(&[0xff, 0xda, 0x00, 0x0c, 3, 1, 0, 2, 0, 3, 0, 0, 63, 0]);
    j.extend_from_slice(&[0u8; 32]);
    j
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

fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png
}

/// A complete PNG claiming `width x height`: its IDAT is one row of a compressed stream
/// that would inflate to the whole image (a classic decompression bomb).
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = png_header(width, height);
    let chunk = |png: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    // zlib header, then a stored block of 5 zero bytes (incomplete stream).
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x01, 0x00, 0x05, 0x00, 0xfa, 0xff, 0, 0, 0, 0, 0],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

/// What a corpus file must give.
enum Expect {
    /// An error of this kind whose message contains the text.
    Fails(&'static str, &'static str),
    /// The same pixels PIL gives (the recording of this fixture).
    MatchesPil(&'static str),
}

/// Writes the corpus of broken and odd files into `dir`: truncated JPEGs and PNGs, a
/// zero-byte file, text named .jpg, bomb headers of every format, and the odd but valid
/// files (animated GIF, CMYK JPEG, 16-bit grey PNG).
fn write_corpus(dir: &Path) -> Vec<(PathBuf, Expect)> {
    use Expect::*;
    let mut out = Vec::new();
    let mut put = |name: &str, bytes: &[u8], expect: Expect| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        out.push((path, expect));
    };
    let jpeg = std::fs::read(fx::file("jpeg_420.jpg")).unwrap();
    let progressive = std::fs::read(fx::file("jpeg_progressive_420.jpg")).unwrap();
    let png = std::fs::read(fx::file("png_rgb8.png")).unwrap();
    put(
        "truncated_half.jpg",
        &jpeg[..jpeg.len() / 2],
        Fails("decode", "truncated"),
    );
    put(
        "truncated_header.jpg",
        &jpeg[..200],
        Fails("decode", "truncated"),
    );
    put(
        "truncated_2_bytes.jpg",
        &jpeg[..jpeg.len() - 2],
        Fails("ok-or-decode", ""),
    );
    put(
        "truncated_progressive.jpg",
        &progressive[..progressive.len() * 2 / 3],
        Fails("decode", "truncated"),
    );
    put(
        "truncated_half.png",
        &png[..png.len() / 2],
        Fails("decode", ""),
    );
    put(
        "truncated_signature.png",
        &png[..5],
        Fails("decode", "unknown or unsupported"),
    );
    put("zero_bytes.jpg", b"", Fails("decode", "empty"));
    put(
        "text.jpg",
        b"This is a text file, not a JPEG.\n",
        Fails("decode", "unknown or unsupported"),
    );
    put(
        "bomb_header_100000x100000.png",
        &png_header(100_000, 100_000),
        Fails("too-large", "100000x100000"),
    );
    put(
        "bomb_100000x100000.png",
        &png_bomb(100_000, 100_000),
        Fails("too-large", "100000x100000"),
    );
    put(
        "bomb_65000x65000.jpg",
        &jpeg_header(65_000, 65_000),
        Fails("too-large", "65000x65000"),
    );
    // A 65535x65535 screen holding one 1x1 frame.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    gif.extend_from_slice(&[0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3b]);
    put(
        "bomb_65535x65535.gif",
        &gif,
        Fails("too-large", "65535x65535"),
    );
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0; 8]);
    bmp.extend_from_slice(&54u32.to_le_bytes());
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&60_000i32.to_le_bytes());
    bmp.extend_from_slice(&60_000i32.to_le_bytes());
    bmp.extend_from_slice(&[1, 0, 24, 0, 0, 0, 0, 0]);
    bmp.extend_from_slice(&[0; 20]);
    put(
        "bomb_60000x60000.bmp",
        &bmp,
        Fails("too-large", "60000x60000"),
    );
    // A lossless WebP whose VP8L header says 16383 x 16383 (14 bits each of width - 1 and
    // height - 1), followed by a few bytes of data.
    let mut webp = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f".to_vec();
    webp.extend_from_slice(&[0xfe, 0xbf, 0xff, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put(
        "bomb_16383x16383.webp",
        &webp,
        Fails("too-large", "16383x16383"),
    );
    for name in [
        "gif_animated.gif",
        "jpeg_cmyk.jpg",
        "png_gray16.png",
        "jpeg_ycck.jpg",
        "webp_animated.webp",
    ] {
        let bytes = std::fs::read(fx::file(name)).unwrap();
        // Named with another extension: the content decides.
        put(&format!("{name}.bin"), &bytes, MatchesPil(name));
    }
    out
}

#[test]
fn broken_and_odd_files_give_clear_errors_or_correct_results() {
    let cases = fx::cases();
    let dir = tempfile::tempdir().unwrap();
    for (path, expect) in write_corpus(dir.path()) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = read_image(&path, &ImageOptions::default());
        match (expect, result) {
            (Expect::MatchesPil(fixture), Ok(image)) => {
                let case = cases.decode.iter().find(|c| c.file == fixture).unwrap();
                assert_eq!(
                    to_rgb8(&image).into_owned(),
                    fx::recorded_rgb(&case.rgb),
                    "{name}"
                );
                println!("{name:32} ok, equal to PIL");
            }
            (Expect::MatchesPil(_), Err(e)) => panic!("{name}: {e}"),
            (Expect::Fails("ok-or-decode", _), Ok(_)) => println!("{name:32} ok"),
            (Expect::Fails(kind, text), Ok(_)) => panic!("{name}: decoded, expected {kind} {text}"),
            (Expect::Fails(kind, text), Err(e)) => {
                let message = e.to_string();
                println!("{name:32} {message}");
                assert!(
                    message.contains(&name),
                    "the error names the file: {message}"
                );
                assert!(message.to_lowercase().contains(text), "{name}: {message}");
                match kind {
                    "too-large" => assert!(matches!(e, Error::ImageTooLarge { .. }), "{name}: {e}"),
                    _ => assert!(matches!(e, Error::ImageDecode { .. }), "{name}: {e}"),
                }
            }
        }
    }
}

#[test]
fn mutated_files_never_panic() {
    // Deterministic corruptions of every fixture: byte flips, zeroed runs, cuts. Each must
    // decode or fail with an error; a panic (outside the decoders' own guards) fails.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let cases = fx::cases();
    let options = ImageOptions::default().with_max_pixels(4_000_000);
    let (mut ok, mut failed) = (0, 0);
    for case in &cases.decode {
        let original = std::fs::read(fx::file(&case.file)).unwrap();
        for round in 0..24 {
            let mut bytes = original.clone();
            let n = bytes.len() as u64;
            match round % 3 {
                0 => {
                    for _ in 0..1 + rand() % 8 {
                        let i = (rand() % n) as usize;
                        bytes[i] ^= 1 << (rand() % 8);
                    }
                }
                1 => {
                    let i = (rand() % n) as usize;
                    let len = (rand() % 64) as usize;
                    let end = (i + len).min(bytes.len());
                    bytes[i..end].fill(0);
                }
                _ => bytes.truncate((rand() % n) as usize),
            }
            match decode_image(&bytes, &options) {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
        }
    }
    println!("mutations: {ok} decoded, {failed} refused");
    assert!(failed > 0 && ok > 0);
}
