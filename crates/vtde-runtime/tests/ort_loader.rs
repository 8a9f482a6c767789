//! The ONNX Runtime loader's failures. This test binary is its own process and never
//! loads a real library, so every failure path is reachable (once a library is loaded,
//! `ort` ignores later paths).

// Helpers outside #[test] functions unwrap too: a failure there is the test's failure.
#![allow(clippy::unwrap_used)]

mod common;

use vtde_runtime::{
    load_onnxruntime, loaded_onnxruntime, Error, Model, RuntimeOptions, ORT_FIX_HINT,
};

#[test]
fn ort_init_from_returns_err_for_missing_and_garbage_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(ort::init_from(dir.path().join("missing.so")).is_err());
    let garbage = dir.path().join("libonnxruntime.so");
    std::fs::write(&garbage, b"definitely not a shared library").unwrap();
    assert!(ort::init_from(&garbage).is_err());
}

#[test]
fn missing_and_garbage_libraries_are_reported_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("libonnxruntime.so.1.31.1");
    let err = load_onnxruntime(Some(&missing)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::OnnxRuntimeNotFound { .. }), "{msg}");
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("not found"), "{msg}");
    assert!(msg.contains(ORT_FIX_HINT), "{msg}");
    assert!(msg.contains("fetch-onnxruntime.sh") && msg.contains("ORT_DYLIB_PATH"));

    // A folder is searched for the library's file names.
    let err = load_onnxruntime(Some(dir.path())).unwrap_err();
    assert!(err.to_string().contains("libonnxruntime"), "{err}");

    let garbage = dir.path().join("garbage.so");
    std::fs::write(&garbage, b"\x7fELF but not really").unwrap();
    let err = load_onnxruntime(Some(&garbage)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("garbage.so") && msg.contains("failed to load"),
        "{msg}"
    );
    assert!(loaded_onnxruntime().is_none());
}

#[test]
fn model_open_with_a_bad_library_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    common::write_package(dir.path(), false);
    let options =
        RuntimeOptions::default().with_onnxruntime_library(dir.path().join("vision.onnx"));
    let err = Model::open(dir.path(), &options).unwrap_err();
    assert!(matches!(err, Error::OnnxRuntimeNotFound { .. }), "{err}");
}
