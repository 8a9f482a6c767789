//! Fuzz target `image`: `vtde_runtime::decode_image` (and, one input in 16, `read_image`
//! and `ImagePreprocessor::preprocess_file` on a temporary file, the streaming
//! pipeline's path with JPEG DCT scaling) on mutated image files, each decoded image then
//! preprocessed with the demo package's settings (exact resize) or CLIP's
//! (shortest edge, center crop). Seeds: the image fixtures and the
//! example images. A decoder panic the runtime catches is an error, not a failure, but it
//! is listed as a notable rejection (a decoder bug worth knowing).
#![allow(clippy::unwrap_used)]

use std::cell::Cell;

use vtde_fuzz::{workspace_root, Fuzzer};
use vtde_runtime::ndarray::Array3;
use vtde_runtime::{decode_image, read_image, ImageOptions, ImagePreprocessor};

#[test]
fn fuzz_image() {
    let root = workspace_root();
    // Exact resize (the demo), and shortest-edge resize with a center crop (CLIP).
    let preprocessors = [
        "models/demo/vtde.json",
        "crates/vtde-fuzz/seeds/manifest/clip-modern.json",
    ]
    .map(|m| ImagePreprocessor::new(&vtde_package::read_manifest(&root.join(m)).unwrap().image));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("input");
    let counter = Cell::new(0u64);

    let target = |data: &[u8]| -> Result<(), String> {
        let n = counter.get();
        counter.set(n + 1);
        let options = ImageOptions::default()
            .with_max_pixels(4_000_000)
            .with_exif_orientation(n % 2 == 1)
            .with_jpeg_dct_scaling(n % 4 < 2);
        let preprocessor = &preprocessors[(n / 2 % 2) as usize];
        let (h, w) = preprocessor.output_size();
        let image = decode_image(data, &options).map_err(|e| e.to_string())?;
        let pixels = preprocessor
            .preprocess_batch(std::slice::from_ref(&image))
            .map_err(|e| e.to_string())?;
        assert_eq!(pixels.shape(), [1, 3, h as usize, w as usize]);
        if n.is_multiple_of(16) {
            std::fs::write(&file, data).unwrap();
            let again = read_image(&file, &options).map_err(|e| e.to_string())?;
            // The same bytes decode the same way from a file and from memory.
            assert_eq!(
                (again.width(), again.height(), again.color()),
                (image.width(), image.height(), image.color())
            );
            let mut out = Array3::<f32>::zeros((3, h as usize, w as usize));
            preprocessor
                .preprocess_file(&file, &options, out.view_mut())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    };

    let report = Fuzzer::new("image")
        .seed_files(&root.join("tests/fixtures/images/files"))
        .seed_files(&root.join("models/examples"))
        .seed_files(&root.join("crates/vtde-fuzz/seeds/image"))
        .dictionary(&[
            b"\xff\xd8\xff",
            b"\xff\xc0",
            b"\xff\xc2",
            b"\xff\xc4",
            b"\xff\xda",
            b"\xff\xdb",
            b"\xff\xdd",
            b"\xff\xe1",
            b"Exif\0\0",
            b"\x89PNG\r\n\x1a\n",
            b"IHDR",
            b"IDAT",
            b"PLTE",
            b"tRNS",
            b"acTL",
            b"fcTL",
            b"IEND",
            b"GIF89a",
            b"NETSCAPE2.0",
            b"BM",
            b"II*\0",
            b"MM\0*",
            b"RIFF",
            b"WEBPVP8 ",
            b"VP8L",
            b"VP8X",
            b"ANMF",
        ])
        .max_len(2 << 20)
        .notable(|message| message.contains("panicked"))
        .run(&target);
    report.assert_clean();
}
