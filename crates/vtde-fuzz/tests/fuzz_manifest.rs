//! Fuzz target `manifest`: `vtde_package::parse_manifest` then `validate_manifest` on
//! mutated `vtde.json` documents (mostly structural JSON mutations: extreme numbers,
//! other types, dropped and duplicated keys). A manifest that passes is then used as the
//! runtime uses it: `ImagePreprocessor::new(&m.image)` preprocesses two small images.
//! Seeds: `models/demo/vtde.json` and the manifests `vtde export` writes for the
//! checkpoint fixtures (`crates/vtde-fuzz/seeds/manifest/`).
//!
//! Besides panics, a finding is a validated manifest whose `pixel_values` would need more
//! than 256 MiB (the contract must bound sizes; the allocation itself would abort the
//! process). Validated manifests giving non-finite pixel values or a non-finite
//! `exp(logit_scale)` are listed as notable.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use vtde_fuzz::{files_under, json_tokens, workspace_root, Fuzzer};
use vtde_runtime::image::{DynamicImage, RgbImage};
use vtde_runtime::ImagePreprocessor;

/// Largest `pixel_values` (bytes, one image) a validated manifest may ask for.
const MAX_PIXEL_VALUES_BYTES: u64 = 256 << 20;

/// Rejections of accepted manifests that the runtime would act on wrongly.
const NOTABLE: &str = "validated manifest";

#[test]
fn fuzz_manifest() {
    let root = workspace_root();
    let mut seeds = vec![std::fs::read(root.join("models/demo/vtde.json")).unwrap()];
    for path in files_under(&root.join("crates/vtde-fuzz/seeds/manifest")) {
        seeds.push(std::fs::read(path).unwrap());
    }
    let mut dictionary = json_tokens(seeds.iter().map(Vec::as_slice));
    for extra in [
        "shortest_edge",
        "exact",
        "bicubic",
        "nearest",
        "lanczos",
        "box",
    ] {
        dictionary.push(format!("\"{extra}\"").into_bytes());
    }
    let tokens: Vec<&[u8]> = dictionary.iter().map(Vec::as_slice).collect();

    let gradient = DynamicImage::ImageRgb8(RgbImage::from_fn(7, 5, |x, y| {
        vtde_runtime::image::Rgb([(x * 36) as u8, (y * 60) as u8, ((x + y) * 20) as u8])
    }));
    let thin = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 300, [200, 10, 90].into()));
    let path = Path::new("vtde.json");

    let target = |data: &[u8]| -> Result<(), String> {
        let m = vtde_package::parse_manifest(path, data).map_err(|e| e.to_string())?;
        vtde_package::validate_manifest(path, &m).map_err(|e| e.to_string())?;
        let img = &m.image;
        let bytes = 12u64
            .saturating_mul(u64::from(img.height))
            .saturating_mul(u64::from(img.width));
        if bytes > MAX_PIXEL_VALUES_BYTES {
            panic!(
                "{NOTABLE} asks for {}x{} pixel_values: {bytes} bytes per image",
                img.height, img.width
            );
        }
        if !m.logit_scale.exp().is_finite() {
            return Err(format!(
                "{NOTABLE} has logit_scale {} whose exponential is not finite",
                m.logit_scale
            ));
        }
        let preprocessor = ImagePreprocessor::new(img);
        for image in [&gradient, &thin] {
            let pixels = preprocessor
                .preprocess_batch(std::slice::from_ref(image))
                .map_err(|e| e.to_string())?;
            if let Some(bad) = pixels.iter().find(|v| !v.is_finite()) {
                return Err(format!(
                    "{NOTABLE} gives non-finite pixel values ({bad}) with rescale_factor {:?}, normalize {:?}",
                    img.rescale_factor, img.normalize
                ));
            }
        }
        Ok(())
    };

    let mut fuzzer = Fuzzer::new("manifest")
        .json()
        .dictionary(&tokens)
        .max_len(256 << 10)
        .notable(|message| message.starts_with(NOTABLE));
    for seed in seeds {
        fuzzer = fuzzer.seed(seed);
    }
    let report = fuzzer.run(&target);
    report.assert_clean();
}
