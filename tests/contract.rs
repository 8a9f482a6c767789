//! The package contract end to end: packages that break it are refused when opened (no
//! file read unhashed, no size or constant that overflows, graphs that agree with the
//! manifest), scores are never NaN, the exporter refuses to write what the runtime would
//! refuse and checks the config against the weights, and older packages still open as
//! `docs/package-format.md` says.

use std::fs;
use std::path::Path;

use vtde_package::{Error as PackageError, FORMAT_VERSION};
use vtde_runtime::{Error, GraphKind, Model, PackageOptions, RuntimeOptions};
use vtde_tests::{checkpoint_copy, edit_f32_weights, edit_json, package_copy};

const CONFIG: &str = "vit-bert-tiny";

/// Options that hash every file on every open (no checksum cache).
fn options() -> RuntimeOptions {
    RuntimeOptions::default()
        .with_package_options(PackageOptions::default().with_checksum_cache_dir(None))
}

fn unverified() -> RuntimeOptions {
    RuntimeOptions::default().with_package_options(
        PackageOptions::default()
            .with_checksum_cache_dir(None)
            .with_checksum_verification(false),
    )
}

fn open_err(package: &Path, options: &RuntimeOptions) -> Error {
    match Model::open(package, options) {
        Ok(_) => panic!("a package that breaks the contract opened"),
        Err(e) => e,
    }
}

/// The message of the manifest error `err`, which must be one.
fn manifest_message(err: &Error) -> &str {
    match err {
        Error::Package(PackageError::InvalidManifest { message, .. }) => message,
        other => panic!("expected an invalid manifest, got {other}"),
    }
}

fn edit_manifest(package: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    edit_json(&package.join("vtde.json"), edit);
}

// --- Files read unhashed -------------------------------------------------------------

#[test]
fn weights_declared_null_with_the_data_file_present_are_refused() {
    for graph in ["vision", "text", "projection"] {
        let (_tmp, pkg) = package_copy(CONFIG);
        edit_manifest(&pkg, |m| {
            m["graphs"][graph]["weights"] = serde_json::Value::Null
        });
        // Scrambled weights: before, they were loaded unhashed and scored with exit 0.
        let data = pkg.join(format!("{graph}.onnx.data"));
        let mut bytes = fs::read(&data).unwrap();
        bytes.iter_mut().for_each(|b| *b = b.wrapping_add(1));
        fs::write(&data, bytes).unwrap();
        for options in [options(), unverified()] {
            let err = open_err(&pkg, &options);
            match &err {
                Error::Package(PackageError::UndeclaredExternalData {
                    graph: path,
                    location,
                    declared: None,
                }) => {
                    assert!(path.ends_with(format!("{graph}.onnx")), "{err}");
                    assert_eq!(location, &format!("{graph}.onnx.data"));
                }
                other => panic!("{graph}: unexpected {other}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(&format!("{graph}.onnx.data")), "{msg}");
        }
    }
}

#[test]
fn a_graph_reading_another_file_than_its_declared_weights_is_refused() {
    let (_tmp, pkg) = package_copy(CONFIG);
    // Declare some other (hashed) file as the vision weights: the graph still reads
    // vision.onnx.data, which nothing hashes then.
    fs::copy(pkg.join("text.onnx.data"), pkg.join("decoy.data")).unwrap();
    let decoy = vtde_package::sha256_file(&pkg.join("decoy.data")).unwrap();
    edit_manifest(&pkg, |m| {
        m["graphs"]["vision"]["weights"] =
            serde_json::json!({"file": "decoy.data", "sha256": decoy})
    });
    match open_err(&pkg, &options()) {
        Error::Package(PackageError::UndeclaredExternalData {
            location, declared, ..
        }) => {
            assert_eq!(location, "vision.onnx.data");
            assert_eq!(declared.as_deref(), Some("decoy.data"));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_tampered_tokenizer_fails_its_checksum() {
    let (_tmp, pkg) = package_copy(CONFIG);
    Model::open(&pkg, &options()).expect("the intact package opens");
    // Still a valid tokenizer: one vocabulary entry renamed.
    let path = pkg.join("tokenizer.json");
    let text = fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("\"[UNK]\"", "\"[UNX]\"", 1);
    assert_ne!(text, tampered);
    fs::write(&path, tampered).unwrap();
    let err = open_err(&pkg, &options());
    assert!(
        matches!(&err, Error::ChecksumMismatch { path, .. } if path.ends_with("tokenizer.json")),
        "{err}"
    );

    // Not even JSON: the checksum is still the message, not the parser's.
    fs::write(&path, b"{ not a tokenizer").unwrap();
    let err = open_err(&pkg, &options());
    assert!(
        matches!(&err, Error::ChecksumMismatch { path, .. } if path.ends_with("tokenizer.json")),
        "{err}"
    );
}

// --- Sizes and constants -------------------------------------------------------------

#[test]
fn huge_image_sizes_are_refused_without_allocating() {
    // 100000 aborted on allocation, 4294967295 panicked (exit 101).
    for side in [100_000u64, 4_294_967_295] {
        let (_tmp, pkg) = package_copy(CONFIG);
        edit_manifest(&pkg, |m| {
            m["image"]["height"] = side.into();
            m["image"]["width"] = side.into();
            m["image"]["resize"]["rule"] =
                serde_json::json!({"kind": "exact", "height": side, "width": side});
        });
        let err = open_err(&pkg, &options());
        let msg = manifest_message(&err);
        assert!(
            msg.contains("image.height") && msg.contains("16384"),
            "{msg}"
        );
    }
}

#[test]
fn an_image_size_the_vision_graph_does_not_take_is_refused() {
    // Consistent within the manifest (32 → 16), but the graph takes 32x32.
    let (_tmp, pkg) = package_copy(CONFIG);
    edit_manifest(&pkg, |m| {
        m["image"]["height"] = 16.into();
        m["image"]["width"] = 16.into();
        m["image"]["resize"]["rule"] =
            serde_json::json!({"kind": "exact", "height": 16, "width": 16});
    });
    let err = open_err(&pkg, &options());
    match &err {
        Error::GraphContract {
            graph: GraphKind::Vision,
            message,
            ..
        } => {
            assert!(message.contains("pixel_values"), "{message}");
            assert!(message.contains("[?, 3, 32, 32]"), "{message}");
            assert!(message.contains("[?, 3, 16, 16]"), "{message}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn output_widths_the_graphs_do_not_give_are_refused() {
    let (_tmp, pkg) = package_copy(CONFIG);
    let mut dv = 0;
    edit_manifest(&pkg, |m| {
        dv = m["graphs"]["vision"]["output_dim"].as_u64().unwrap();
        m["graphs"]["vision"]["output_dim"] = (dv + 1).into();
    });
    match open_err(&pkg, &options()) {
        Error::GraphContract {
            graph: GraphKind::Vision,
            message,
            ..
        } => {
            assert!(message.contains("image_features"), "{message}");
            assert!(message.contains(&format!("[?, {}]", dv + 1)), "{message}");
        }
        other => panic!("unexpected {other}"),
    }

    let (_tmp, pkg) = package_copy(CONFIG);
    edit_manifest(&pkg, |m| {
        let p = m["projection_dim"].as_u64().unwrap() * 2;
        m["projection_dim"] = p.into();
        m["graphs"]["projection"]["output_dim"] = p.into();
    });
    match open_err(&pkg, &options()) {
        Error::GraphContract {
            graph: GraphKind::Projection,
            message,
            ..
        } => assert!(message.contains("image_embeds"), "{message}"),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn logit_scales_whose_exponential_overflows_are_refused() {
    // Before: all-NaN probabilities with exit 0.
    for scale in [88.8, 100.0, 1e30] {
        let (_tmp, pkg) = package_copy(CONFIG);
        edit_manifest(&pkg, |m| m["logit_scale"] = scale.into());
        let err = open_err(&pkg, &options());
        assert!(manifest_message(&err).contains("logit_scale"), "{err}");
    }
}

#[test]
fn preprocessing_constants_must_be_sensible() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 4] = [
        ("image.rescale_factor", |m| {
            m["image"]["rescale_factor"] = 1e38.into()
        }),
        ("image.normalize.std", |m| {
            m["image"]["normalize"]["std"] = serde_json::json!([0.5, 0.0, 0.5])
        }),
        ("image.normalize.mean", |m| {
            m["image"]["normalize"]["mean"] = serde_json::json!([0.5, 1e30, 0.5])
        }),
        // Neither resize nor crop: every image failed (exit 1).
        ("center crop", |m| {
            m["image"]["resize"] = serde_json::Value::Null;
            m["image"]["center_crop"] = serde_json::Value::Null;
        }),
    ];
    for (field, edit) in cases {
        let (_tmp, pkg) = package_copy(CONFIG);
        edit_manifest(&pkg, edit);
        let err = open_err(&pkg, &options());
        assert!(manifest_message(&err).contains(field), "{field}: {err}");
    }
}

#[test]
fn a_zero_embedding_scores_an_error_not_nan() {
    let model = Model::open(vtde_tests::exported_package(CONFIG), &options()).unwrap();
    let texts = model.embed_texts(&["a photo of a cat"]).unwrap();
    let zero = vtde_runtime::l2_normalize(
        vtde_runtime::ndarray::Array2::<f32>::zeros((1, texts.ncols())).view(),
    );
    let err = model.score(zero.view(), texts.view()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteScore {
                image: 0,
                text: 0,
                ..
            }
        ),
        "{err}"
    );
}

// --- Older packages ------------------------------------------------------------------

#[test]
fn a_version_2_package_opens_with_its_tokenizer_unhashed() {
    let v3 = vtde_tests::exported_package(CONFIG);
    let (_tmp, pkg) = package_copy(CONFIG);
    edit_manifest(&pkg, |m| {
        assert_eq!(m["format_version"], FORMAT_VERSION);
        m["format_version"] = 2.into();
        m.as_object_mut().unwrap().remove("tokenizer_sha256");
    });
    let texts = ["a photo of a cat", "a dog"];
    let want = Model::open(&v3, &options())
        .unwrap()
        .embed_texts(&texts)
        .unwrap();
    let model = Model::open(&pkg, &options()).unwrap();
    assert!(!model.package().tokenizer_is_hashed());
    assert_eq!(model.embed_texts(&texts).unwrap(), want);
    drop(model);

    // The tokenizer is not hashed: a changed one is read as it is ...
    let path = pkg.join("tokenizer.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen("\"[UNK]\"", "\"[UNX]\"", 1)).unwrap();
    Model::open(&pkg, &options()).expect("format 2 reads its tokenizer unhashed");
    // ... but everything else is checked as in format 3.
    let data = pkg.join("text.onnx.data");
    let mut bytes = fs::read(&data).unwrap();
    bytes[0] ^= 0x55;
    fs::write(&data, bytes).unwrap();
    let err = open_err(&pkg, &options());
    assert!(
        matches!(&err, Error::ChecksumMismatch { path, .. } if path.ends_with("text.onnx.data")),
        "{err}"
    );
    edit_manifest(&pkg, |m| {
        m["graphs"]["text"]["weights"] = serde_json::Value::Null
    });
    assert!(matches!(
        open_err(&pkg, &options()),
        Error::Package(PackageError::UndeclaredExternalData { .. })
    ));
}

#[test]
fn the_committed_demo_is_a_current_package() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let package = vtde_runtime::Package::open(
        &demo,
        &PackageOptions::default().with_checksum_cache_dir(None),
    )
    .expect("the demo opens, every file hashed");
    assert_eq!(package.manifest().format_version, FORMAT_VERSION);
    assert!(package.tokenizer_is_hashed());
}

// --- The exporter ----------------------------------------------------------------------

/// Exports `checkpoint` beside it; the error, and whether anything was written.
fn export_refused(checkpoint: &Path) -> (vtde_export::Error, bool) {
    let out = checkpoint.with_file_name("package");
    match vtde_export::export(checkpoint, &out, &mut |_| {}) {
        Ok(_) => panic!("export of a bad checkpoint succeeded"),
        Err(e) => {
            assert!(
                !out.join("vtde.json").exists(),
                "a refused export left a manifest"
            );
            (e, out.exists())
        }
    }
}

fn set_weight(checkpoint: &Path, weight: &str, value: f32) {
    edit_f32_weights(&checkpoint.join("model.safetensors"), |name, values| {
        if name == weight {
            values[0] = value;
        }
    });
}

#[test]
fn non_finite_weights_are_refused_naming_the_weight_and_file() {
    for (weight, value) in [
        ("logit_scale", f32::NAN),
        ("logit_scale", f32::INFINITY),
        ("text_model.encoder.layer.1.output.dense.weight", f32::NAN),
        ("vision_model.embeddings.cls_token", f32::NEG_INFINITY),
    ] {
        let (_tmp, ckpt) = checkpoint_copy(CONFIG);
        set_weight(&ckpt, weight, value);
        let (err, _) = export_refused(&ckpt);
        assert!(
            matches!(&err, vtde_export::Error::NonFiniteWeight { name, .. } if name == weight),
            "{weight}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(weight) && msg.contains("model.safetensors"),
            "{msg}"
        );
    }
}

#[test]
fn a_logit_scale_the_runtime_would_refuse_is_not_exported() {
    for scale in [88.8f32, 100.0, 1e30] {
        let (_tmp, ckpt) = checkpoint_copy(CONFIG);
        set_weight(&ckpt, "logit_scale", scale);
        let (err, wrote) = export_refused(&ckpt);
        let msg = err.to_string();
        assert!(
            matches!(err, vtde_export::Error::Contract { .. }),
            "{scale}: {msg}"
        );
        assert!(
            msg.contains("model.safetensors") && msg.contains("`logit_scale`"),
            "{msg}"
        );
        assert!(!wrote, "refused before anything was written");
    }
}

#[test]
fn processor_constants_the_runtime_would_refuse_are_not_exported() {
    let cases: [(&str, serde_json::Value); 3] = [
        ("image_std", serde_json::json!([0.5, 0.0, 0.5])),
        ("image_mean", serde_json::json!([1e30, 0.5, 0.5])),
        ("rescale_factor", serde_json::json!(1e38)),
    ];
    for (key, value) in cases {
        let (_tmp, ckpt) = checkpoint_copy(CONFIG);
        edit_json(&ckpt.join("processor_config.json"), |c| {
            c["image_processor"][key] = value.clone()
        });
        let (err, wrote) = export_refused(&ckpt);
        let msg = err.to_string();
        assert!(matches!(err, vtde_export::Error::Contract { .. }), "{msg}");
        assert!(
            msg.contains("processor_config.json") && msg.contains(&format!("`{key}`")),
            "{msg}"
        );
        assert!(!wrote, "refused before anything was written");
    }
}

#[test]
fn a_negative_or_overflowing_layer_norm_eps_is_refused() {
    for (tower, value) in [
        ("text_config", serde_json::json!(-1e-12)),
        ("vision_config", serde_json::json!(-0.5)),
        ("vision_config", serde_json::json!(1e39)),
    ] {
        let (_tmp, ckpt) = checkpoint_copy(CONFIG);
        edit_json(&ckpt.join("config.json"), |c| {
            c[tower]["layer_norm_eps"] = value.clone()
        });
        let (err, wrote) = export_refused(&ckpt);
        let msg = err.to_string();
        assert!(
            msg.contains("config.json") && msg.contains(&format!("`{tower}.layer_norm_eps`")),
            "{msg}"
        );
        assert!(!wrote);
    }
}

#[test]
fn a_config_with_fewer_layers_than_the_weights_is_refused() {
    // num_hidden_layers 0 exported zero layers although the weights hold two.
    for (tower, prefix) in [
        ("vision_config", "vision_model."),
        ("text_config", "text_model."),
    ] {
        for layers in [0, 1] {
            let (_tmp, ckpt) = checkpoint_copy(CONFIG);
            edit_json(&ckpt.join("config.json"), |c| {
                c[tower]["num_hidden_layers"] = layers.into()
            });
            let (err, wrote) = export_refused(&ckpt);
            match &err {
                vtde_export::Error::LayerCount {
                    field,
                    configured,
                    found,
                    example,
                    ..
                } => {
                    assert_eq!(field, &format!("{tower}.num_hidden_layers"));
                    assert_eq!(*configured, layers);
                    // The fixture's towers have two layers (indices 0 and 1).
                    assert_eq!(*found, 1);
                    assert!(example.starts_with(&format!("{prefix}encoder.layer.1.")));
                }
                other => panic!("{tower}: unexpected {other}"),
            }
            let msg = err.to_string();
            assert!(
                msg.contains("config.json")
                    && msg.contains(&format!("`{tower}.num_hidden_layers` is {layers}"))
                    && msg.contains("hold 2 layers"),
                "{msg}"
            );
            assert!(!wrote);
        }
    }
}

#[test]
fn every_fixture_exports_a_package_that_passes_the_contract() {
    // The checks refuse nothing real: each fixture checkpoint exports, and its manifest
    // validates as the runtime reads it.
    for config in vtde_tests::fixture_configs() {
        let dir = vtde_tests::exported_package(&config);
        let m = vtde_package::read_manifest(&dir.join("vtde.json"))
            .unwrap_or_else(|e| panic!("{config}: {e}"));
        assert_eq!(m.format_version, FORMAT_VERSION);
        let tokenizer = vtde_package::sha256_file(&dir.join("tokenizer.json")).unwrap();
        assert_eq!(m.tokenizer_sha256.as_deref(), Some(tokenizer.as_str()));
    }
}
