//! Clear errors for bad checkpoints, packages, images and ONNX Runtime paths: each names
//! the file and what is wrong, and none panics.

use std::fs;
use std::path::Path;

use vtde_tests::{checkpoint_copy, package_copy};

fn edit_config(checkpoint: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    vtde_tests::edit_json(&checkpoint.join("config.json"), edit);
}

fn export_error(checkpoint: &Path) -> String {
    let out = checkpoint.with_file_name("package");
    match vtde_export::export(checkpoint, &out, &mut |_| {}) {
        Ok(_) => panic!("export of a bad checkpoint succeeded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_vision_tower_is_named_with_the_supported_list() {
    let (_tmp, ckpt) = checkpoint_copy("vit-bert-tiny");
    edit_config(&ckpt, |c| c["vision_config"]["model_type"] = "swin".into());
    let msg = export_error(&ckpt);
    assert!(msg.contains("config.json"), "{msg}");
    assert!(msg.contains("`swin`"), "{msg}");
    assert!(msg.contains("vit, deit, beit"), "{msg}");
}

#[test]
fn text_tower_without_pooler_is_refused_with_the_reason() {
    let (_tmp, ckpt) = checkpoint_copy("vit-bert-tiny");
    edit_config(&ckpt, |c| {
        c["text_config"]["model_type"] = "distilbert".into()
    });
    let msg = export_error(&ckpt);
    assert!(msg.contains("distilbert"), "{msg}");
    assert!(msg.contains("no pooled output"), "{msg}");
    assert!(msg.contains("bert, roberta"), "{msg}");
}

#[test]
fn unsupported_checkpoint_class_is_refused() {
    let (_tmp, ckpt) = checkpoint_copy("vit-bert-tiny");
    edit_config(&ckpt, |c| c["model_type"] = "blip".into());
    let msg = export_error(&ckpt);
    assert!(msg.contains("`blip`") && msg.contains("CLIPModel"), "{msg}");
}

#[test]
fn missing_weights_file_is_named() {
    let (_tmp, ckpt) = checkpoint_copy("vit-bert-tiny");
    fs::remove_file(ckpt.join("model.safetensors")).expect("rm");
    let msg = export_error(&ckpt);
    assert!(msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn pytorch_bin_only_says_how_to_convert() {
    let (_tmp, ckpt) = checkpoint_copy("vit-bert-tiny");
    fs::rename(
        ckpt.join("model.safetensors"),
        ckpt.join("pytorch_model.bin"),
    )
    .expect("mv");
    let msg = export_error(&ckpt);
    assert!(
        msg.contains("pytorch_model.bin") && msg.contains("save_pretrained"),
        "{msg}"
    );
}

#[test]
fn corrupt_safetensors_is_named() {
    let (_tmp, ckpt) = checkpoint_copy("vit-bert-tiny");
    fs::write(
        ckpt.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}",
    )
    .expect("write");
    let msg = export_error(&ckpt);
    assert!(
        msg.contains("model.safetensors") && msg.contains("not a valid safetensors"),
        "{msg}"
    );
}

#[test]
fn shape_mismatch_names_the_weight() {
    let (_tmp, ckpt) = checkpoint_copy("vit-bert-tiny");
    // The config now promises a wider text tower than the weights hold.
    edit_config(&ckpt, |c| c["text_config"]["intermediate_size"] = 64.into());
    let msg = export_error(&ckpt);
    assert!(msg.contains("intermediate.dense.weight"), "{msg}");
    assert!(msg.contains("expected [64, 32]"), "{msg}");
}

#[test]
fn missing_image_processor_config_is_named() {
    let (_tmp, ckpt) = checkpoint_copy("vit-bert-tiny");
    for f in ["processor_config.json", "preprocessor_config.json"] {
        let _ = fs::remove_file(ckpt.join(f));
    }
    let msg = export_error(&ckpt);
    assert!(msg.contains("preprocessor_config.json"), "{msg}");
}

#[test]
fn not_a_checkpoint_directory() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let msg = export_error(&tmp.path().join("nothing-here"));
    assert!(
        msg.contains("config.json") && msg.contains("missing"),
        "{msg}"
    );
}

fn open_error(package: &Path) -> String {
    match vtde_runtime::Model::open(package, &vtde_runtime::RuntimeOptions::default()) {
        Ok(_) => panic!("opening a bad package succeeded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_graph_file_is_named() {
    let (_tmp, pkg) = package_copy("vit-bert-tiny");
    fs::remove_file(pkg.join("text.onnx")).expect("rm");
    let msg = open_error(&pkg);
    assert!(msg.contains("text.onnx"), "{msg}");
}

#[test]
fn tampered_graph_fails_its_checksum() {
    let (_tmp, pkg) = package_copy("vit-bert-tiny");
    let path = pkg.join("vision.onnx");
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&path, bytes).expect("write");
    let msg = open_error(&pkg);
    assert!(
        msg.contains("vision.onnx") && msg.contains("sha256"),
        "{msg}"
    );
}

/// A package verified once is remembered in the checksum cache; a weights file changed
/// in place afterwards (same size) must still be caught on the next open.
#[test]
fn weights_changed_after_a_cached_verification_fail_their_checksum() {
    let (tmp, pkg) = package_copy("vit-bert-tiny");
    let options = vtde_runtime::RuntimeOptions::default().with_package_options(
        vtde_runtime::PackageOptions::default()
            .with_checksum_cache_dir(Some(tmp.path().join("cache"))),
    );
    vtde_runtime::Model::open(&pkg, &options).expect("the intact package opens");
    let entries = fs::read_dir(tmp.path().join("cache/verified"))
        .expect("the open filled the cache")
        .count();
    assert!(
        entries >= 6,
        "three graphs and their weights files: {entries}"
    );

    let path = pkg.join("text.onnx.data");
    let mut bytes = fs::read(&path).expect("read");
    bytes[0] ^= 0x55;
    fs::write(&path, bytes).expect("write");
    let msg = match vtde_runtime::Model::open(&pkg, &options) {
        Ok(_) => panic!("a tampered weights file passed"),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.contains("text.onnx.data") && msg.contains("sha256"),
        "{msg}"
    );
}

#[test]
fn manifest_from_a_newer_format_is_refused() {
    let (_tmp, pkg) = package_copy("vit-bert-tiny");
    let path = pkg.join("vtde.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    json["format_version"] = 99.into();
    fs::write(&path, serde_json::to_vec(&json).expect("encode")).expect("write");
    let msg = open_error(&pkg);
    assert!(msg.contains("vtde.json") && msg.contains("99"), "{msg}");
}

#[test]
fn corrupt_manifest_is_named() {
    let (_tmp, pkg) = package_copy("vit-bert-tiny");
    fs::write(pkg.join("vtde.json"), b"{ \"format_version\": 1, ").expect("write");
    let msg = open_error(&pkg);
    assert!(msg.contains("vtde.json"), "{msg}");
}

#[test]
fn corrupt_and_truncated_images_are_errors_that_name_the_file() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let png = fs::read(vtde_tests::input_image("astronaut.png")).expect("read");
    let cases: [(&str, &[u8]); 3] = [
        ("text.jpg", b"just some text"),
        ("empty.png", b""),
        ("truncated.png", &png[..png.len() / 2]),
    ];
    for (name, bytes) in cases {
        let path = tmp.path().join(name);
        fs::write(&path, bytes).expect("write");
        match vtde_runtime::read_image(&path, &vtde_runtime::ImageOptions::default()) {
            Ok(_) => panic!("{name} decoded"),
            Err(e) => assert!(e.to_string().contains(name), "{name}: {e}"),
        }
    }
}
