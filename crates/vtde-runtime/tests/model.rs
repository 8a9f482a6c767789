//! End-to-end tests of `Model` on a tiny package whose graphs are checkable by hand (see
//! `common`). They need the ONNX Runtime library (`bash tools/fetch-onnxruntime.sh`);
//! without it they are skipped with a note, or fail when `VTDE_REQUIRE_ORT` is set.

// Helpers outside #[test] functions unwrap too: a failure there is the test's failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ndarray::{array, Array2};
use vtde_runtime::image::{DynamicImage, Rgb, RgbImage};
use vtde_runtime::{Error, GraphKind, Model, RuntimeOptions, TextBatch};

fn open(dir: &std::path::Path) -> Model {
    Model::open(dir, &RuntimeOptions::default()).unwrap()
}

fn mat(data: &[f32], rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols), data.to_vec()).unwrap()
}

fn close(a: &Array2<f32>, b: &Array2<f32>, tol: f32) {
    assert_eq!(a.shape(), b.shape());
    for (x, y) in a.iter().zip(b.iter()) {
        assert!((x - y).abs() <= tol, "{a:?}\n!=\n{b:?}");
    }
}

fn constant_image(rgb: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_pixel(10, 8, Rgb(rgb)))
}

fn normalized(x: &Array2<f32>) -> Array2<f32> {
    let mut out = x.clone();
    for mut row in out.rows_mut() {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.mapv_inplace(|v| v / n);
    }
    out
}

#[test]
fn embeds_and_scores_match_hand_computation() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let model = open(dir.path());

    // Images: constant colours survive resize and crop, so each channel's mean is its
    // normalized value.
    let colours = [[255u8, 0, 51], [10, 200, 30]];
    let images: Vec<_> = colours.iter().map(|&c| constant_image(c)).collect();
    let px = |v: u8| ((f64::from(v) / 255.0) as f32 - 0.5) / 0.5;
    let means = Array2::from_shape_fn((2, 3), |(i, c)| px(colours[i][c]));
    let features = means.dot(&mat(&wv(), 3, DV));
    let pixel_values = model.preprocess_images(&images).unwrap();
    assert_eq!(pixel_values.shape(), &[2, 3, 4, 4]);
    close(
        &model.image_features(pixel_values.view()).unwrap(),
        &features,
        1e-5,
    );
    let image_embeds = normalized(&features.dot(&mat(&pv(), DV, P)));
    close(&model.embed_images(&images).unwrap(), &image_embeds, 1e-5);

    // Texts: [CLS]=2 … [SEP]=3; features = [Σ ids, Σ mask] @ WT.
    let texts = ["a photo of a cat", "dog"];
    let batch = model.tokenize(&texts).unwrap();
    assert_eq!(batch.input_ids.row(1).to_vec(), vec![2, 8, 3, 0, 0, 0, 0]);
    let stats = array![[31.0f32, 7.0], [13.0, 3.0]];
    let text_features = stats.dot(&mat(&wt(2), 2, DT));
    close(&model.text_features(&batch).unwrap(), &text_features, 1e-4);
    let text_embeds = normalized(&text_features.dot(&mat(&pt(), DT, P)));
    close(&model.embed_texts(&texts).unwrap(), &text_embeds, 1e-5);

    // Scores.
    let scores = model
        .score(image_embeds.view(), text_embeds.view())
        .unwrap();
    let scale = 2.6592f32.exp();
    let lpt = text_embeds.dot(&image_embeds.t()) * scale;
    close(&scores.logits_per_text, &lpt, 1e-4);
    close(&scores.logits_per_image, &lpt.t().to_owned(), 1e-4);
    assert!(scores.loss.is_some());
    for row in scores.probs_per_image.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn projection_accepts_zero_rows() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let model = open(dir.path());
    let img = Array2::<f32>::ones((2, DV));
    let txt = Array2::<f32>::ones((3, DT));
    let none_img = Array2::<f32>::zeros((0, DV));
    let none_txt = Array2::<f32>::zeros((0, DT));

    let (i, t) = model.project(img.view(), none_txt.view()).unwrap();
    assert_eq!((i.shape(), t.shape()), (&[2, P][..], &[0, P][..]));
    close(&i, &img.dot(&mat(&pv(), DV, P)), 1e-5);
    let (i, t) = model.project(none_img.view(), txt.view()).unwrap();
    assert_eq!((i.shape(), t.shape()), (&[0, P][..], &[3, P][..]));
    close(&t, &txt.dot(&mat(&pt(), DT, P)), 1e-5);
    let (i, t) = model.project(none_img.view(), none_txt.view()).unwrap();
    assert_eq!((i.shape(), t.shape()), (&[0, P][..], &[0, P][..]));

    // Empty inputs everywhere.
    assert_eq!(model.embed_images(&[]).unwrap().shape(), &[0, P]);
    assert_eq!(model.embed_texts::<&str>(&[]).unwrap().shape(), &[0, P]);
    let empty = model.tokenize::<&str>(&[]).unwrap();
    assert_eq!(model.text_features(&empty).unwrap().shape(), &[0, DT]);
    let s = model
        .score(Array2::zeros((0, P)).view(), Array2::zeros((2, P)).view())
        .unwrap();
    assert_eq!(s.probs_per_image.shape(), &[0, 2]);
    assert!(s.loss.is_none());
}

#[test]
fn token_type_ids_fed_only_when_listed() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), true);
    let model = open(dir.path());
    let mut batch = model.tokenize(&["cat"]).unwrap();
    batch.token_type_ids.fill(1);
    // stats = [Σ ids, Σ mask, Σ types] = [12, 3, 3].
    let want = array![[12.0f32, 3.0, 3.0]].dot(&mat(&wt(3), 3, DT));
    close(&model.text_features(&batch).unwrap(), &want, 1e-4);

    // The manifest lists token_type_ids but the graph does not take them.
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let mut m = manifest(false);
    m.text.inputs.push("token_type_ids".into());
    write_manifest(dir.path(), &m);
    let err = Model::open(dir.path(), &RuntimeOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::GraphContract {
                graph: GraphKind::Text,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_shapes_are_errors() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let model = open(dir.path());
    let wrong = ndarray::Array4::<f32>::zeros((1, 3, 5, 4));
    assert!(matches!(
        model.image_features(wrong.view()),
        Err(Error::BadInputShape { .. })
    ));
    let wrong = Array2::<f32>::zeros((1, DV + 1));
    assert!(model
        .project(wrong.view(), Array2::zeros((0, DT)).view())
        .is_err());
    let too_long = TextBatch {
        input_ids: Array2::ones((1, 9)),
        attention_mask: Array2::ones((1, 9)),
        token_type_ids: Array2::zeros((1, 9)),
    };
    assert!(model.text_features(&too_long).is_err());
    let mismatched = TextBatch {
        input_ids: Array2::ones((1, 3)),
        attention_mask: Array2::ones((1, 2)),
        token_type_ids: Array2::zeros((1, 3)),
    };
    assert!(model.text_features(&mismatched).is_err());
    assert!(model
        .score(
            Array2::zeros((1, P)).view(),
            Array2::zeros((1, P + 1)).view()
        )
        .is_err());
    // A non-contiguous view works (copied to standard layout).
    let px = ndarray::Array4::<f32>::zeros((4, 4, 3, 2));
    let view = px.view().permuted_axes([3, 2, 0, 1]);
    assert_eq!(model.image_features(view).unwrap().shape(), &[2, DV]);
}

#[test]
fn many_threads_share_one_model() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let options = RuntimeOptions::default()
        .with_max_sessions_per_graph(3)
        .with_threads(1);
    let model = Model::open(dir.path(), &options).unwrap();
    let images: Vec<_> = (0..5u8)
        .map(|i| constant_image([i * 40, 255 - i * 30, i]))
        .collect();
    let texts = ["a photo of a cat", "a dog", "cat cat", ""];
    let want_images = model.embed_images(&images).unwrap();
    let want_texts = model.embed_texts(&texts).unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..20 {
                    assert_eq!(model.embed_images(&images).unwrap(), want_images);
                    assert_eq!(model.embed_texts(&texts).unwrap(), want_texts);
                }
            });
        }
    });
    for g in GraphKind::ALL {
        let n = model.sessions_created(g);
        assert!((1..=3).contains(&n), "{g}: {n} sessions");
    }
}

#[test]
fn tampered_and_corrupt_graphs() {
    if !ort_available() {
        return;
    }
    // Tampered: checksum mismatch names the file.
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let mut bytes = projection_onnx();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.path().join("projection.onnx"), &bytes).unwrap();
    let err = Model::open(dir.path(), &RuntimeOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("projection.onnx"));

    // Corrupt but with a matching checksum: refused before ONNX Runtime reads it, as
    // its external-data references cannot be read, naming the graph.
    let mut m = manifest(false);
    m.graphs.projection.sha256 = hex(&bytes);
    std::fs::write(dir.path().join("projection.onnx"), b"not an onnx model").unwrap();
    m.graphs.projection.sha256 = hex(b"not an onnx model");
    write_manifest(dir.path(), &m);
    let err = Model::open(dir.path(), &RuntimeOptions::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Package(vtde_package::Error::InvalidGraph { path, .. })
                if path.ends_with("projection.onnx")
        ),
        "{err}"
    );

    // A valid protobuf that is no ONNX model (no graph): ONNX Runtime's error, naming
    // the graph.
    std::fs::write(dir.path().join("projection.onnx"), b"\x12\x04none").unwrap();
    m.graphs.projection.sha256 = hex(b"\x12\x04none");
    write_manifest(dir.path(), &m);
    let err = Model::open(dir.path(), &RuntimeOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Session {
                graph: GraphKind::Projection,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_second_library_is_refused() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let other = dir.path().join("libonnxruntime.so");
    std::fs::write(&other, b"x").unwrap();
    let options = RuntimeOptions::default().with_onnxruntime_library(other);
    let err = Model::open(dir.path(), &options).unwrap_err();
    assert!(
        matches!(err, Error::OnnxRuntimeAlreadyLoaded { .. }),
        "{err}"
    );
    // Naming the library that is loaded is fine.
    let loaded = vtde_runtime::loaded_onnxruntime().unwrap();
    let options = RuntimeOptions::default().with_onnxruntime_library(loaded);
    Model::open(dir.path(), &options).unwrap();
}

#[cfg(not(feature = "cuda"))]
#[test]
fn missing_execution_provider_feature_is_an_error() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let options = RuntimeOptions::default()
        .with_execution_providers(vec![vtde_runtime::ExecutionProvider::Cuda { device_id: 0 }]);
    let err = Model::open(dir.path(), &options).unwrap_err();
    assert!(
        matches!(err, Error::ExecutionProviderUnavailable { .. }),
        "{err}"
    );
}

/// The library here is the CPU-only PyPI build: a GPU provider cannot start, and the
/// default is strict.
#[cfg(feature = "cuda")]
#[test]
fn a_provider_that_cannot_start_is_an_error_naming_graph_provider_and_cause() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let options = RuntimeOptions::default()
        .with_execution_providers(vec![vtde_runtime::ExecutionProvider::cuda(0)]);
    let err = Model::open(dir.path(), &options).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            &err,
            Error::ProviderFailed {
                graph: GraphKind::Vision,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("vision graph") && msg.contains("vision.onnx"),
        "{msg}"
    );
    assert!(
        msg.contains("CUDA") && msg.contains("built without it"),
        "{msg}"
    );
    assert!(msg.contains("--allow-cpu-fallback"), "{msg}");
}

#[cfg(feature = "cuda")]
#[test]
fn cpu_fallback_runs_on_the_cpu_when_allowed_or_listed_and_says_so() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let strict = Model::open(dir.path(), &RuntimeOptions::default()).unwrap();
    let allowed = RuntimeOptions::default()
        .with_execution_providers(vec![vtde_runtime::ExecutionProvider::cuda(0)])
        .with_cpu_fallback(true);
    let listed = RuntimeOptions::default().with_execution_providers(vec![
        vtde_runtime::ExecutionProvider::tensorrt(0),
        vtde_runtime::ExecutionProvider::Cpu,
    ]);
    for options in [allowed, listed] {
        let model = Model::open(dir.path(), &options).unwrap();
        for placement in model.placements() {
            assert_eq!(placement.provider, "CPUExecutionProvider");
            assert!(placement.on_cpu_only(), "{placement:?}");
            let why = placement.fallback.as_deref().unwrap_or_default();
            assert!(why.contains("built without it"), "{placement:?}");
        }
        // Same results as a model opened on the CPU in the first place.
        let image = [constant_image([10, 200, 30])];
        assert_eq!(
            model.embed_images(&image).unwrap(),
            strict.embed_images(&image).unwrap()
        );
    }
}

#[test]
fn placements_come_from_onnx_runtime_itself() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let model = Model::open(dir.path(), &RuntimeOptions::default()).unwrap();
    let placements = model.placements();
    for (placement, graph) in placements.iter().zip(GraphKind::ALL) {
        assert_eq!(placement.graph, graph);
        assert_eq!(placement.provider, "CPUExecutionProvider");
        assert_eq!(placement.fallback, None);
        // ONNX Runtime's log says how many nodes it placed: at least one per graph.
        let [(provider, nodes)] = placement.nodes.as_slice() else {
            panic!("one provider expected: {placement:?}");
        };
        assert_eq!(provider, "CPUExecutionProvider");
        assert!(*nodes > 0, "{placement:?}");
    }
}

#[test]
fn int8_on_tensorrt_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let options = RuntimeOptions::default()
        .with_precision(vtde_runtime::Precision::Int8)
        .with_execution_providers(vec![vtde_runtime::ExecutionProvider::tensorrt(0)]);
    // Refused before the package is read (this one has no int8 variant at all).
    let err = Model::open(dir.path(), &options).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PrecisionNotForProvider {
                provider: "TensorRT",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("fp16"), "{err}");
}

#[test]
fn embed_image_files_skips_bad_files_and_keeps_rows_in_order() {
    if !ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), false);
    let options = RuntimeOptions::default()
        .with_batch_size(2)
        .with_image_options(vtde_runtime::ImageOptions::default().with_decode_threads(2));
    let model = Model::open(dir.path(), &options).unwrap();
    let colours = [[255u8, 0, 51], [10, 200, 30], [0, 0, 0]];
    let mut paths = Vec::new();
    for (i, c) in colours.iter().enumerate() {
        let p = dir.path().join(format!("good{i}.png"));
        RgbImage::from_pixel(10, 8, Rgb(*c)).save(&p).unwrap();
        paths.push(p);
        let bad = dir.path().join(format!("bad{i}.jpg"));
        std::fs::write(&bad, b"not a jpeg").unwrap();
        paths.push(bad);
    }
    // good0 bad0 good1 bad1 good2 bad2, in batches of two: every batch has a failure.
    let out = model.embed_image_files(&paths).unwrap();
    let rows: Vec<Option<usize>> = out
        .outcomes
        .iter()
        .map(|o| o.as_ref().ok().copied())
        .collect();
    assert_eq!(rows, [Some(0), None, Some(1), None, Some(2), None]);
    for (o, p) in out.outcomes.iter().zip(&paths) {
        if let Err(e) = o {
            assert!(e.to_string().contains(&*p.to_string_lossy()), "{e}");
        }
    }
    let images: Vec<_> = colours.iter().map(|&c| constant_image(c)).collect();
    close(&out.embeddings, &model.embed_images(&images).unwrap(), 1e-6);
    // The streaming pipeline gives the same pixel values as preprocessing the images.
    let mut batches = Vec::new();
    model
        .stream_image_files(&paths[..2], |batch| {
            batches.push(batch);
            Ok::<(), vtde_runtime::Error>(())
        })
        .unwrap();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.items, [0]);
    assert_eq!(batch.failures.len(), 1);
    assert_eq!(batch.failures[0].0, 1);
    assert_eq!(
        batch.pixel_values(),
        model.preprocess_images(&images[..1]).unwrap()
    );
    assert_eq!(
        model.embed_pixel_values(batch.pixel_values()).unwrap(),
        model.embed_images(&images[..1]).unwrap()
    );
}
