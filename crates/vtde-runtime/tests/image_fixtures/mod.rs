//! The image fixtures of `tests/fixtures/images` (written by
//! `tools/make_image_fixtures.py` with PIL and transformers): the list of cases, PIL's
//! decoded RGB, and transformers' `pixel_values`; and the corpus of broken files the
//! robustness tests generate.

#![allow(dead_code)]
// Helpers outside #[test] functions unwrap too: a failure there is the test's failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array3, ArrayView3, Axis};
use serde::Deserialize;
use vtde_runtime::image::RgbImage;
use vtde_runtime::manifest::ImagePreprocess;

/// `tests/fixtures/images`, found above the crate that includes this module (the
/// runtime's tests and the workspace's `tests/` crate both do).
pub fn dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .map(|d| d.join("tests/fixtures/images"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| crate_dir.join("tests/fixtures/images"))
}

#[derive(Debug, Clone, Deserialize)]
pub struct DecodeCase {
    pub file: String,
    pub note: String,
    pub format: String,
    pub pil_mode: String,
    pub size: [u32; 2],
    pub rgb: String,
    #[serde(default)]
    pub rgb_exif: Option<String>,
    #[serde(default)]
    pub exif_orientation: Option<u8>,
    pub pixel_values: TensorRef,
    /// Why vtde does not decode this file (it must fail cleanly), if it does not.
    #[serde(default)]
    pub vtde_unsupported: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TensorRef {
    pub processor: String,
    pub tensor: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Processor {
    pub class: String,
    pub image: ImagePreprocess,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FilterCase {
    pub file: String,
    pub processor: String,
    pub tensor: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JpegEmbeds {
    pub checkpoint: String,
    pub files: Vec<String>,
    pub tensor: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cases {
    pub decode: Vec<DecodeCase>,
    pub processors: HashMap<String, Processor>,
    pub filters: Vec<FilterCase>,
    pub jpeg_embeds: JpegEmbeds,
}

/// `cases.json`.
pub fn cases() -> Cases {
    let text = std::fs::read(dir().join("cases.json")).expect("cases.json is readable");
    serde_json::from_slice(&text).expect("cases.json parses")
}

/// A fixture file's path.
pub fn file(name: &str) -> PathBuf {
    dir().join("files").join(name)
}

/// A recorded RGB image (PNG, 8-bit RGB, as PIL converted it).
pub fn recorded_rgb(rel: &str) -> RgbImage {
    vtde_runtime::read_image(dir().join(rel), &vtde_runtime::ImageOptions::default())
        .expect("recorded PNG decodes")
        .to_rgb8()
}

/// The recorded float32 tensors of `pixel_values.safetensors`.
pub struct Tensors(HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Tensors {
    pub fn load() -> Self {
        let bytes = std::fs::read(dir().join("pixel_values.safetensors")).expect("readable");
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("parses");
        let mut map = HashMap::new();
        for (name, view) in st.tensors() {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            map.insert(name, (view.shape().to_vec(), data));
        }
        Tensors(map)
    }

    pub fn get3(&self, key: &str) -> Array3<f32> {
        let (shape, data) = self.0.get(key).unwrap_or_else(|| panic!("no tensor {key}"));
        Array3::from_shape_vec((shape[0], shape[1], shape[2]), data.clone()).expect("3-D")
    }

    pub fn get2(&self, key: &str) -> ndarray::Array2<f32> {
        let (shape, data) = self.0.get(key).unwrap_or_else(|| panic!("no tensor {key}"));
        ndarray::Array2::from_shape_vec((shape[0], shape[1]), data.clone()).expect("2-D")
    }
}

/// Largest and mean absolute difference between two `pixel_values`, in levels of 255
/// (the difference divided by the per-channel step `rescale / std`).
pub fn level_diff(
    ours: ArrayView3<f32>,
    theirs: ArrayView3<f32>,
    config: &ImagePreprocess,
) -> (f32, f32) {
    assert_eq!(ours.shape(), theirs.shape(), "shapes differ");
    let rescale = config.rescale_factor.unwrap_or(1.0);
    let std = config.normalize.as_ref().map_or([1.0; 3], |n| n.std);
    let mut max = 0f32;
    let mut sum = 0f64;
    for (c, std) in std.iter().enumerate() {
        let step = rescale / std;
        let (a, b) = (ours.index_axis(Axis(0), c), theirs.index_axis(Axis(0), c));
        for (x, y) in a.iter().zip(b.iter()) {
            let d = (x - y).abs() / step;
            max = max.max(d);
            sum += f64::from(d);
        }
    }
    (max, (sum / ours.len() as f64) as f32)
}

/// Cosine of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Differences between two RGB images: (max, mean, fraction of samples that differ).
pub fn rgb_diff(a: &RgbImage, b: &RgbImage) -> (u8, f64, f64) {
    assert_eq!(a.dimensions(), b.dimensions(), "sizes differ");
    let mut max = 0u8;
    let mut sum = 0u64;
    let mut n = 0u64;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += u64::from(d);
        n += u64::from(d > 0);
    }
    let len = a.as_raw().len() as f64;
    (max, sum as f64 / len, n as f64 / len)
}

/// One of Pillow's own test images (`tests/fixtures/images/pillow`, written by
/// `tools/make_pillow_fixtures.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct PillowCase {
    pub file: String,
    pub source: String,
    pub note: String,
    pub format: String,
    pub pil_mode: String,
    pub size: [u32; 2],
    pub rgb: String,
    /// Why vtde does not decode this file (it must fail cleanly), if it does not.
    #[serde(default)]
    pub vtde_unsupported: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PillowCases {
    pub decode: Vec<PillowCase>,
}

/// `pillow/cases.json`.
pub fn pillow_cases() -> PillowCases {
    let text = std::fs::read(dir().join("pillow/cases.json")).expect("pillow/cases.json");
    serde_json::from_slice(&text).expect("pillow/cases.json parses")
}

/// A file of `pillow/files`.
pub fn pillow_file(name: &str) -> PathBuf {
    dir().join("pillow/files").join(name)
}
