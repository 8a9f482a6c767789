//! Behaviours of `ort` 2.0.0-rc.15 and ONNX Runtime 1.31 that the runtime was designed
//! around, checked with `ort` directly. Its own test binary: the runtime keeps its ONNX
//! Runtime environment private, and a process can hold only one, so these tests create
//! it themselves and never open a model.

// Helpers outside #[test] functions unwrap too: a failure there is the test's failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ndarray::Array2;

/// The process's ONNX Runtime environment, from `ORT_DYLIB_PATH` or the project cache
/// that `tools/fetch-onnxruntime.sh` fills; `None` (test skipped) when neither has the
/// library, unless `VTDE_REQUIRE_ORT` is set.
fn own_environment() -> Option<ort::environment::Environment> {
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../.cache/onnxruntime/1.31.1/libonnxruntime.so.1.31.1")
        });
    match ort::init_from(&library).map(|b| b.build()) {
        Ok(Ok(environment)) => Some(environment),
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(_)) => String::new(),
            };
            if std::env::var_os("VTDE_REQUIRE_ORT").is_some() {
                panic!(
                    "VTDE_REQUIRE_ORT is set but {} does not load: {why}",
                    library.display()
                );
            }
            eprintln!("SKIPPED (no ONNX Runtime at {}): {why}", library.display());
            None
        }
    }
}

/// Records an `ort` 2.0.0-rc.15 / ONNX Runtime 1.31 behaviour the runtime was designed
/// around: zero-row tensors are accepted (here by a MatMul projection). The runtime still
/// never feeds them (see `Model::project`).
#[test]
fn ort_accepts_zero_row_tensors() {
    let Some(environment) = own_environment() else {
        return;
    };
    let mut session = ort::session::Session::builder(&environment)
        .unwrap()
        .commit_from_memory(&projection_onnx())
        .unwrap();
    let img = Array2::<f32>::zeros((0, DV));
    let txt = Array2::<f32>::ones((2, DT));
    let outputs = session
        .run(ort::inputs![
            "image_features" => ort::value::TensorRef::from_array_view(img.view()).unwrap(),
            "text_features" => ort::value::TensorRef::from_array_view(txt.view()).unwrap(),
        ])
        .unwrap();
    let image_embeds = outputs["image_embeds"].try_extract_array::<f32>().unwrap();
    assert_eq!(image_embeds.shape(), &[0, P]);
    let text_embeds = outputs["text_embeds"].try_extract_array::<f32>().unwrap();
    assert_eq!(text_embeds.shape(), &[2, P]);
}
