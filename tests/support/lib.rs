//! Shared helpers of the end-to-end suite: where the fixtures are, reading the
//! recordings that `tools/make_fixtures.py` made with transformers, exporting each fixture
//! checkpoint once per test binary, and the comparisons the targets of `docs/design.md`
//! are stated in.

pub mod shapes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ndarray::{Array2, Array4, ArrayD, ArrayView2, Ix2, Ix4, IxDyn};
use serde::Deserialize;
use vtde_runtime::{l2_normalize, Model, TextBatch};

/// `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `tests/fixtures/inputs/images/<name>`.
pub fn input_image(name: &str) -> PathBuf {
    fixtures_dir().join("inputs/images").join(name)
}

/// The fixture configurations that have a checkpoint and a recording.
pub fn fixture_configs() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("reference.safetensors").is_file())
        // A recording without a checkpoint (`fit-checkpoint`: its checkpoint is made by
        // `vtde fit` in its test) is not a configuration to export.
        .filter(|e| e.path().join("checkpoint/config.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixture configurations found");
    names
}

/// `reference.json` of one fixture configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceInfo {
    pub images: Vec<String>,
    pub texts: Vec<String>,
    pub max_length: usize,
    pub loss_n: usize,
    #[serde(default)]
    pub jpeg_images: Vec<String>,
}

/// One fixture configuration: its checkpoint, inputs and transformers' outputs.
pub struct Fixture {
    pub name: String,
    pub dir: PathBuf,
    pub info: ReferenceInfo,
    tensors: HashMap<String, ArrayD<f32>>,
    ints: HashMap<String, ArrayD<i64>>,
}

impl Fixture {
    pub fn load(name: &str) -> Self {
        let dir = fixtures_dir().join(name);
        let info: ReferenceInfo = serde_json::from_slice(
            &std::fs::read(dir.join("reference.json")).expect("reference.json is readable"),
        )
        .expect("reference.json parses");
        let bytes = std::fs::read(dir.join("reference.safetensors")).expect("recording readable");
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("recording parses");
        let mut tensors = HashMap::new();
        let mut ints = HashMap::new();
        for (key, view) in st.tensors() {
            let shape = IxDyn(view.shape());
            match view.dtype() {
                safetensors::Dtype::F32 => {
                    let data = view
                        .data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    tensors.insert(key, ArrayD::from_shape_vec(shape, data).expect("shape"));
                }
                safetensors::Dtype::I64 => {
                    let data = view
                        .data()
                        .chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect();
                    ints.insert(key, ArrayD::from_shape_vec(shape, data).expect("shape"));
                }
                other => panic!("unexpected dtype {other:?} for {key}"),
            }
        }
        Self {
            name: name.to_owned(),
            dir,
            info,
            tensors,
            ints,
        }
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// A recorded f32 tensor.
    pub fn f32(&self, key: &str) -> &ArrayD<f32> {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("{}: no recorded tensor {key}", self.name))
    }

    /// Whether the recording has a tensor called `key`.
    pub fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key) || self.ints.contains_key(key)
    }

    /// A recorded i64 tensor.
    pub fn i64(&self, key: &str) -> &ArrayD<i64> {
        self.ints
            .get(key)
            .unwrap_or_else(|| panic!("{}: no recorded tensor {key}", self.name))
    }

    /// The recorded `pixel_values`, `[n, 3, H, W]`.
    pub fn pixel_values(&self) -> Array4<f32> {
        self.f32("pixel_values")
            .clone()
            .into_dimensionality::<Ix4>()
            .expect("pixel_values is 4-D")
    }

    /// The recorded token arrays as a batch (zeros where the tokenizer gives no types).
    pub fn text_batch(&self) -> TextBatch {
        let two_d = |key: &str| {
            self.i64(key)
                .clone()
                .into_dimensionality::<Ix2>()
                .unwrap_or_else(|_| panic!("{}: {key} is not 2-D", self.name))
        };
        let input_ids = two_d("input_ids");
        let token_type_ids = if self.has("token_type_ids") {
            two_d("token_type_ids")
        } else {
            Array2::zeros(input_ids.raw_dim())
        };
        TextBatch {
            attention_mask: two_d("attention_mask"),
            token_type_ids,
            input_ids,
        }
    }

    /// The normalized image and text embeddings `model` gives for the recorded inputs:
    /// the graphs alone, no preprocessing.
    pub fn embeddings(&self, model: &Model) -> (Array2<f32>, Array2<f32>) {
        let image = model
            .image_features(self.pixel_values().view())
            .expect("vision graph");
        let text = model.text_features(&self.text_batch()).expect("text graph");
        let (image, text) = model
            .project(image.view(), text.view())
            .expect("projection");
        (l2_normalize(image.view()), l2_normalize(text.view()))
    }
}

/// Exports a fixture checkpoint once per test process and returns the package directory.
pub fn exported_package(config: &str) -> PathBuf {
    export_once(config, &[])
}

/// Like [`exported_package`], with int8 and fp16 variants of the towers.
pub fn exported_package_with_variants(config: &str) -> PathBuf {
    use vtde_runtime::Precision;
    export_once(config, &[Precision::Int8, Precision::Fp16])
}

fn export_once(config: &str, variants: &[vtde_runtime::Precision]) -> PathBuf {
    static DIRS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let mut dirs = DIRS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = format!(
        "{config}{}",
        if variants.is_empty() { "" } else { "-variants" }
    );
    dirs.entry(key.clone())
        .or_insert_with(|| {
            let out = root.path().join(&key);
            let checkpoint = fixtures_dir().join(config).join("checkpoint");
            let options = vtde_export::ExportOptions::default().with_variants(variants.to_vec());
            vtde_export::export_with(&checkpoint, &out, &options, &mut |_| {})
                .unwrap_or_else(|e| panic!("export of {config} failed: {e}"));
            out
        })
        .clone()
}

/// Largest absolute difference between two arrays of the same shape.
pub fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Smallest row-wise cosine similarity between two matrices of the same shape.
pub fn min_row_cosine(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.outer_iter()
        .zip(b.outer_iter())
        .map(|(x, y)| {
            let dot: f64 = x
                .iter()
                .zip(y.iter())
                .map(|(p, q)| (*p as f64) * (*q as f64))
                .sum();
            let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|q| (*q as f64).powi(2)).sum::<f64>().sqrt();
            (dot / (nx * ny)) as f32
        })
        .fold(1.0, f32::min)
}

/// A writable copy of a fixture checkpoint (`tests/fixtures/<config>/checkpoint`), at
/// `<temp>/checkpoint`.
pub fn checkpoint_copy(config: &str) -> (tempfile::TempDir, PathBuf) {
    copy_dir(
        &fixtures_dir().join(config).join("checkpoint"),
        "checkpoint",
    )
}

/// A writable copy of an exported fixture package, at `<temp>/package`.
pub fn package_copy(config: &str) -> (tempfile::TempDir, PathBuf) {
    copy_dir(&exported_package(config), "package")
}

/// Copies the files of `src` into `<new temp dir>/<name>`.
pub fn copy_dir(src: &Path, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dst = tmp.path().join(name);
    std::fs::create_dir(&dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("source readable") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy");
    }
    (tmp, dst)
}

/// Edits a JSON file in place.
pub fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    edit(&mut json);
    std::fs::write(path, serde_json::to_vec_pretty(&json).expect("encode")).expect("write");
}

/// Edits the f32 values of the tensors of a safetensors file in place: `edit` gets each
/// tensor's name and values.
pub fn edit_f32_weights(path: &Path, mut edit: impl FnMut(&str, &mut Vec<f32>)) {
    let bytes = std::fs::read(path).expect("read weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
        let mut values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        edit(&name, &mut values);
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name, view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .expect("view");
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).expect("write weights");
}
