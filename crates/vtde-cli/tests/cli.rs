//! End-to-end tests of the `vtde` binary: export a fixture checkpoint, score a folder
//! that mixes good and bad files, and check exit codes, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vtde_tests::{exported_package, input_image, Fixture};

fn vtde(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vtde"))
        .args(args)
        .output()
        .expect("vtde runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A folder with three good images (one in a subfolder), a corrupt one, a hidden one and
/// a non-image file.
fn mixed_folder() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("photos");
    std::fs::create_dir_all(dir.join("more")).expect("mkdir");
    std::fs::copy(input_image("astronaut.png"), dir.join("a_astronaut.png")).expect("copy");
    std::fs::copy(input_image("coffee.png"), dir.join("b_coffee.png")).expect("copy");
    std::fs::copy(input_image("chelsea.png"), dir.join("more/c_chelsea.png")).expect("copy");
    std::fs::write(dir.join("broken.jpg"), b"this is not a JPEG").expect("write");
    std::fs::copy(input_image("noise_37x53.png"), dir.join(".hidden.png")).expect("copy");
    std::fs::write(dir.join("notes.txt"), b"ignored").expect("write");
    (tmp, dir)
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[test]
fn export_then_score_a_mixed_folder() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let package = tmp.path().join("package");
    let checkpoint = vtde_tests::fixtures_dir().join("vit-bert-tiny/checkpoint");
    let out = vtde(&[
        "export",
        checkpoint.to_str().expect("utf-8"),
        package.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "export failed: {}", text(&out.stderr));
    assert!(package.join("vtde.json").is_file());

    // Labels: the first three fixture texts, so that transformers' recorded logits give
    // the expected probabilities.
    let fx = Fixture::load("vit-bert-tiny");
    let labels: Vec<&str> = fx.info.texts[..3].iter().map(String::as_str).collect();
    let (_photos, dir) = mixed_folder();
    let mut args = vec![
        "score",
        package.to_str().expect("utf-8"),
        dir.to_str().expect("utf-8"),
    ];
    args.push("--labels");
    args.extend(labels.iter().copied());
    let out = vtde(&args);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);

    assert_eq!(
        out.status.code(),
        Some(1),
        "one bad file means exit 1; stderr: {stderr}"
    );
    assert!(
        stderr.contains("broken.jpg"),
        "the bad file is named: {stderr}"
    );
    assert!(
        !stderr.contains("hidden"),
        "hidden files are skipped silently: {stderr}"
    );

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "header and three rows: {stdout}");
    // "" (the third label) is an empty CSV field.
    assert_eq!(
        lines[0],
        "path,a photo of a cat,A DOG playing in the snow.,"
    );
    let expected_order = ["a_astronaut.png", "b_coffee.png", "more/c_chelsea.png"];
    let logits = fx.f32("logits_per_image");
    for (line, (name, fixture_name)) in lines[1..].iter().zip(expected_order.iter().zip([
        "astronaut.png",
        "coffee.png",
        "chelsea.png",
    ])) {
        let fields: Vec<&str> = line.split(',').collect();
        assert!(Path::new(fields[0]).ends_with(name), "row order: {line}");
        let probs: Vec<f32> = fields[1..]
            .iter()
            .map(|f| f.parse().expect("a number"))
            .collect();
        let row = fx
            .info
            .images
            .iter()
            .position(|n| n == fixture_name)
            .expect("image");
        let reference: Vec<f32> = (0..3).map(|t| logits[[row, t]]).collect();
        for (ours, theirs) in probs.iter().zip(softmax(&reference)) {
            assert!(
                (ours - theirs).abs() < 1e-3,
                "{line}: {ours} vs transformers {theirs}"
            );
        }
    }
}

#[test]
fn all_good_inputs_exit_zero() {
    let package = exported_package("vit-bert-tiny");
    let image = input_image("astronaut.png");
    let out = vtde(&[
        "score",
        package.to_str().expect("utf-8"),
        image.to_str().expect("utf-8"),
        "--labels",
        "a",
        "b",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
}

#[test]
fn missing_package_is_a_usage_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let image = input_image("astronaut.png");
    let out = vtde(&[
        "score",
        tmp.path().to_str().expect("utf-8"),
        image.to_str().expect("utf-8"),
        "--labels",
        "a",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("vtde.json"), "{stderr}");
}

#[test]
fn bad_checkpoint_is_an_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = vtde(&[
        "export",
        tmp.path().to_str().expect("utf-8"),
        tmp.path().join("out").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("config.json"));
}

/// `vtde bench folder` measures the four ways of running a folder and prints the rates and
/// ratios; a file that cannot be decoded is counted out, and a folder with no image is an
/// error, not an empty table.
#[test]
fn bench_folder_reports_every_measurement() {
    let (_tmp, dir) = mixed_folder();
    let package = exported_package("vit-bert-tiny");
    let out = vtde(&[
        "bench",
        "folder",
        package.to_str().expect("utf-8"),
        dir.to_str().expect("utf-8"),
        "--rounds",
        "2",
        "--batch-size",
        "2",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    // The three good images are measured; the corrupt one fails in every round.
    assert!(stdout.starts_with("3 images, batch 2"), "{stdout}");
    assert!(
        stderr.contains("1 of 4 files cannot be decoded"),
        "{stderr}"
    );
    assert_eq!(stderr.matches(": round ").count(), 2, "{stderr}");
    let rate = |label: &str| -> f64 {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in {stdout}"));
        line[label.len() + 2..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line:?}"))
    };
    for label in [
        "end to end ",
        "end to end, decoders at normal",
        "model only",
        "decode only",
        "shared cores bound",
    ] {
        let value = rate(label);
        assert!(value.is_finite() && value > 0.0, "{label}: {value}");
    }
    let (model, decode) = (rate("model only"), rate("decode only"));
    let bound = rate("shared cores bound");
    // The bound is 1 / (1/model + 1/decode), from the medians' rounds; it lies below both.
    assert!(bound < model && bound < decode, "{stdout}");
    assert!(stdout.contains("end to end / model only"), "{stdout}");

    let empty = tempfile::tempdir().expect("temp dir");
    let out = vtde(&[
        "bench",
        "folder",
        package.to_str().expect("utf-8"),
        empty.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no image files"),
        "{}",
        text(&out.stderr)
    );
}
