//! Models run on ONNX Runtime's process-wide thread pool when their thread settings are
//! the pool's, on pools of their own otherwise, with the same results either way.
//!
//! A test binary of its own: the pool is made once per process, by the first load, so
//! what this checks depends on nothing else having loaded ONNX Runtime with other
//! settings first.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use vtde_runtime::{Model, RuntimeOptions};

#[test]
fn models_share_the_process_pool_unless_their_thread_settings_differ() {
    // Loads ONNX Runtime with the default settings, so the pool is the default one.
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let texts = ["a red circle", "a blue square"];

    let shared = Model::open(dir.path(), &RuntimeOptions::default()).unwrap();
    assert!(shared.shares_thread_pool());
    let expected = shared.embed_texts(&texts).unwrap();

    let others = [
        ("one thread", RuntimeOptions::default().with_threads(1)),
        ("spinning", RuntimeOptions::default().with_spinning(true)),
        (
            "opted out",
            RuntimeOptions::default().with_shared_thread_pool(false),
        ),
        (
            "parallel executor",
            RuntimeOptions::default().with_inter_op_threads(2),
        ),
    ];
    for (what, options) in others {
        let model = Model::open(dir.path(), &options).unwrap();
        assert!(!model.shares_thread_pool(), "{what}: own pools expected");
        let got = model.embed_texts(&texts).unwrap();
        assert_eq!(got.shape(), expected.shape(), "{what}");
        for (a, b) in got.iter().zip(expected.iter()) {
            assert!((a - b).abs() <= 1e-6, "{what}: {got:?} != {expected:?}");
        }
    }
    // A second model with the default settings joins the same pool.
    let again = Model::open(dir.path(), &RuntimeOptions::default()).unwrap();
    assert!(again.shares_thread_pool());
    assert_eq!(again.embed_texts(&texts).unwrap(), expected);
}
