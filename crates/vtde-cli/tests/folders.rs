//! End-to-end tests of folder runs: `vtde score`, `embed`, `embed-text`, `search` and
//! `merge` on folders that mix good and bad files; a run killed with SIGKILL and resumed;
//! shards merged. Expected values come from the runtime library called directly on the
//! same files (an independent path through the code: no pipeline, no output files) or
//! from an uninterrupted, unsharded run of the binary.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vtde_runtime::ndarray::{Array2, Axis};
use vtde_runtime::{l2_normalize, read_image, ImageOptions, Model, RuntimeOptions};
use vtde_tests::{exported_package, input_image};

const GOOD: [&str; 6] = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "gray_64x48.png",
    "noise_37x53.png",
    "rgba_40x30.png",
];

fn vtde(args: &[&str]) -> Output {
    vtde_env(args, &[])
}

fn vtde_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vtde"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("vtde runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// A folder of good images (two levels), bad files of several kinds, and entries that
/// must be passed over. Returns the folder and the good files in walk order.
fn mixed_folder(root: &Path) -> (PathBuf, Vec<PathBuf>, Vec<PathBuf>) {
    let dir = root.join("photos");
    std::fs::create_dir_all(dir.join("b_sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(dir.join(".cache")).expect("mkdir");
    let put = |name: &str, src: &str| {
        std::fs::copy(input_image(src), dir.join(name)).expect("copy");
    };
    put("a_astronaut.png", "astronaut.png");
    put("b_sub/chelsea.png", "chelsea.png");
    put("b_sub/deeper/coffee.PNG", "coffee.png");
    put("c gray, \"quoted\".png", "gray_64x48.png");
    put(".hidden.png", "noise_37x53.png");
    put(".cache/thumb.png", "noise_37x53.png");
    std::fs::write(dir.join("b_sub/broken.jpg"), b"this is not a JPEG").expect("write");
    std::fs::write(dir.join("empty.png"), b"").expect("write");
    let png = std::fs::read(input_image("chelsea.png")).expect("read");
    std::fs::write(dir.join("truncated.png"), &png[..png.len() / 3]).expect("write");
    std::fs::write(dir.join("notes.txt"), b"not an image, not listed").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&dir, dir.join("b_sub/loop")).expect("symlink");
    let good = [
        "a_astronaut.png",
        "b_sub/chelsea.png",
        "b_sub/deeper/coffee.PNG",
        "c gray, \"quoted\".png",
    ]
    .iter()
    .map(|n| dir.join(n))
    .collect();
    let bad = ["b_sub/broken.jpg", "empty.png", "truncated.png"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    (dir, good, bad)
}

fn open_model(package: &Path) -> Model {
    Model::open(package, &RuntimeOptions::default()).expect("model opens")
}

/// Image embeddings by the library, one file at a time.
fn embed_files(model: &Model, files: &[PathBuf]) -> Array2<f32> {
    let images: Vec<_> = files
        .iter()
        .map(|f| read_image(f, &ImageOptions::default()).expect("good image"))
        .collect();
    model.embed_images(&images).expect("embeds")
}

/// Parses a float32 `.npy` file without vtde's reader: header length, the shape from the
/// header text, then the data.
fn load_npy(path: &Path) -> Array2<f32> {
    let bytes = std::fs::read(path).expect("npy readable");
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).expect("ascii header");
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape = &header[header.find("'shape': (").expect("shape") + 10..];
    let shape = &shape[..shape.find(')').expect("shape end")];
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse().expect("dim"))
        .collect();
    let data: Vec<f32> = bytes[10 + hlen..]
        .chunks_exact(4)
        .take(dims[0] * dims[1])
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Array2::from_shape_vec((dims[0], dims[1]), data).expect("npy holds its rows")
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn jsonl(path: &Path) -> Vec<Value> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn score_a_mixed_folder_with_templates_and_an_errors_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let package = exported_package("vit-bert-tiny");
    let (dir, good, bad) = mixed_folder(tmp.path());
    let labels_file = tmp.path().join("labels.txt");
    std::fs::write(&labels_file, "cat\n\n a dog, outside \r\nsnow\n").expect("write");
    let out = tmp.path().join("scores.jsonl");
    let templates = ["a photo of a {}.", "a blurry picture of {}"];
    let args = [
        "score",
        s(&package),
        s(&dir),
        "--labels-file",
        s(&labels_file),
        "--template",
        templates[0],
        "--template",
        templates[1],
        "-o",
        s(&out),
        "--batch-size",
        "3",
    ];
    let run = vtde(&args);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "some files failed: {stderr}");
    for b in &bad {
        assert!(stderr.contains(s(b)), "{} reported: {stderr}", b.display());
    }
    assert!(
        !stderr.contains("hidden") && !stderr.contains("thumb"),
        "{stderr}"
    );
    assert!(
        stderr.contains("4 scored") && stderr.contains("3 failed"),
        "{stderr}"
    );

    // The errors file: each bad file once, with a reason, in walk order.
    let errors = jsonl(&tmp.path().join("scores.jsonl.errors.jsonl"));
    let failed: Vec<&str> = errors
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    let expected_bad: Vec<&str> = bad.iter().map(|p| s(p)).collect();
    assert_eq!(failed, expected_bad);
    assert!(errors
        .iter()
        .all(|e| !e["error"].as_str().expect("reason").is_empty()));

    // Independent computation: labels with templates averaged as CLIP does.
    let labels = ["cat", "a dog, outside", "snow"];
    let model = open_model(&package);
    let mut label_embeds = Array2::<f32>::zeros((labels.len(), model.manifest().projection_dim));
    for (l, mut row) in labels.iter().zip(label_embeds.rows_mut()) {
        let texts: Vec<String> = templates.iter().map(|t| t.replace("{}", l)).collect();
        let e = model.embed_texts(&texts).expect("texts");
        row.assign(&e.mean_axis(Axis(0)).expect("mean"));
    }
    let label_embeds = l2_normalize(label_embeds.view());
    let images = embed_files(&model, &good);
    let probs = model
        .score(images.view(), label_embeds.view())
        .expect("scores")
        .probs_per_image;

    let records = jsonl(&out);
    assert_eq!(records.len(), good.len());
    for ((record, file), expected) in records.iter().zip(&good).zip(probs.rows()) {
        assert_eq!(record["path"], s(file), "walk order");
        let got = record["probs"].as_object().expect("probs");
        let keys: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), labels.len());
        for (label, want) in labels.iter().zip(expected) {
            let p = got[*label].as_f64().expect("number") as f32;
            assert!((p - want).abs() < 1e-5, "{label}: {p} vs {want}");
        }
    }

    // --top-k 2 in CSV: the two largest of the same probabilities, in order.
    let csv = tmp.path().join("top.csv");
    let mut top_args = args.to_vec();
    top_args.truncate(args.len() - 4);
    top_args.extend(["-o", s(&csv), "--top-k", "2"]);
    assert_eq!(vtde(&top_args).status.code(), Some(1));
    let table = read(&csv);
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("path,label_1,prob_1,label_2,prob_2"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), good.len());
    let last = rows.last().expect("a row");
    assert!(
        last.starts_with("\"") && last.contains("\"\"quoted\"\""),
        "CSV quoting: {last}"
    );
    for (row, expected) in rows.iter().zip(probs.rows()) {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| expected[b].total_cmp(&expected[a]));
        let fields = csv_fields(row);
        assert_eq!(fields.len(), 5, "{row}");
        for (rank, &i) in order[..2].iter().enumerate() {
            assert_eq!(fields[1 + 2 * rank], labels[i]);
            let p: f32 = fields[2 + 2 * rank].parse().expect("prob");
            assert!((p - expected[i]).abs() < 1e-5, "{row}");
        }
    }
}

/// Splits one CSV line (RFC 4180 quoting, no line breaks inside fields).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("field").push(c),
        }
    }
    fields
}

#[test]
fn usage_errors_exit_2() {
    let package = exported_package("vit-bert-tiny");
    let image = input_image("astronaut.png");
    let cases: Vec<Vec<&str>> = vec![
        vec!["score", s(&package), s(&image), "--labels", "a", "--resume"],
        vec![
            "score",
            s(&package),
            s(&image),
            "--labels",
            "a",
            "--shard",
            "3/3",
        ],
        vec!["score", s(&package), s(&image), "--labels", "a", "a"],
        vec![
            "score",
            s(&package),
            s(&image),
            "--labels",
            "a",
            "--template",
            "no slot",
        ],
        vec!["score", s(&package), s(&image)],
        vec!["search", "/nonexistent-dir", "query"],
    ];
    for args in cases {
        let out = vtde(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let help = vtde(&["score", "--help"]);
    assert!(text(&help.stdout).contains("Exit codes"));
}

#[test]
fn embed_embed_text_and_search_agree_with_the_library() {
    let tmp = tempfile::tempdir().expect("tmp");
    let package = exported_package("vit-bert-tiny");
    let (dir, good, bad) = mixed_folder(tmp.path());
    let emb = tmp.path().join("emb");
    let run = vtde(&[
        "embed",
        s(&package),
        s(&dir),
        "-o",
        s(&emb),
        "--batch-size",
        "2",
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));

    let model = open_model(&package);
    let expected = embed_files(&model, &good);
    let rows = load_npy(&emb.join("embeddings.npy"));
    assert!(
        max_abs_diff(&rows, &expected) < 1e-5,
        "rows equal the library's"
    );
    let index: Vec<String> = jsonl(&emb.join("index.jsonl"))
        .iter()
        .map(|v| v["path"].as_str().expect("path").to_owned())
        .collect();
    let good_paths: Vec<String> = good.iter().map(|p| s(p).to_owned()).collect();
    assert_eq!(index, good_paths);
    let failed: Vec<String> = jsonl(&emb.join("errors.jsonl"))
        .iter()
        .map(|v| v["path"].as_str().expect("path").to_owned())
        .collect();
    let bad_paths: Vec<String> = bad.iter().map(|p| s(p).to_owned()).collect();
    assert_eq!(failed, bad_paths);

    // Text search: the ranking of the library's cosines.
    let query = "a photo of a cat";
    let q = model.embed_texts(&[query]).expect("query");
    let sims = expected.dot(&q.row(0));
    let mut order: Vec<usize> = (0..good.len()).collect();
    order.sort_by(|&a, &b| sims[b].total_cmp(&sims[a]));
    let found = vtde(&["search", s(&emb), query, "--top", "3", "--format", "jsonl"]);
    assert_eq!(found.status.code(), Some(0), "{}", text(&found.stderr));
    let hits: Vec<Value> = text(&found.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(hits.len(), 3);
    for (rank, (hit, &i)) in hits.iter().zip(&order).enumerate() {
        assert_eq!(hit["rank"], rank + 1);
        assert_eq!(hit["path"], good_paths[i]);
        let score = hit["score"].as_f64().expect("score") as f32;
        assert!((score - sims[i]).abs() < 1e-5);
    }
    // Image search: an image finds itself first.
    let found = vtde(&["search", s(&emb), "--image", s(&good[1]), "--top", "1"]);
    let out = text(&found.stdout);
    let row: Vec<&str> = out.lines().nth(1).expect("one result").split(',').collect();
    assert_eq!(row[0], "1");
    assert_eq!(row[2], good_paths[1]);

    // embed-text: rows equal the library's text embeddings, blank lines skipped.
    let texts_file = tmp.path().join("texts.txt");
    std::fs::write(&texts_file, "a cat\n\nsnow, \"deep\"\na dog\n").expect("write");
    let temb = tmp.path().join("temb");
    let run = vtde(&[
        "embed-text",
        s(&package),
        "--texts-file",
        s(&texts_file),
        "-o",
        s(&temb),
        "--batch-size",
        "2",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let texts = ["a cat", "snow, \"deep\"", "a dog"];
    let expected = model.embed_texts(&texts).expect("texts");
    let rows = load_npy(&temb.join("embeddings.npy"));
    assert!(max_abs_diff(&rows, &expected) < 1e-5);
    let index: Vec<Value> = jsonl(&temb.join("index.jsonl"));
    let got: Vec<&str> = index
        .iter()
        .map(|v| v["text"].as_str().expect("text"))
        .collect();
    assert_eq!(got, texts);
    // Image-to-text search over the text embeddings.
    let found = vtde(&["search", s(&temb), "--image", s(&good[0]), "--top", "3"]);
    assert_eq!(found.status.code(), Some(0), "{}", text(&found.stderr));
    assert!(text(&found.stdout).starts_with("rank,score,text\n"));
}

/// Many small images in a few folders, and two bad files: a run long enough to kill.
fn corpus(root: &Path, copies: usize) -> PathBuf {
    let dir = root.join("corpus");
    for i in 0..copies {
        let sub = dir.join(format!("set{}", i % 4));
        std::fs::create_dir_all(&sub).expect("mkdir");
        let name = GOOD[i % GOOD.len()];
        std::fs::copy(input_image(name), sub.join(format!("{i:03}_{name}"))).expect("copy");
    }
    std::fs::write(dir.join("set1/zz_bad.jpg"), b"garbage").expect("write");
    std::fs::write(dir.join("set3/000_empty.png"), b"").expect("write");
    dir
}

/// The `commit.done` of a marker, once it is readable.
fn committed(marker: &Path) -> u64 {
    std::fs::read(marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["commit"]["done"].as_u64())
        .unwrap_or(0)
}

/// Starts `vtde args` slowed down, waits until `marker` says at least `after` items are
/// committed, and kills it with SIGKILL.
#[cfg(unix)]
fn run_and_kill(args: &[&str], marker: &Path, after: u64) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vtde"))
        .args(args)
        .env("VTDE_TEST_BATCH_DELAY_MS", "25")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vtde starts");
    // Not a timing assertion: only a bound on waiting for a run that went wrong.
    let give_up = Instant::now() + Duration::from_secs(300);
    while committed(marker) < after {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before the kill"
        );
        assert!(Instant::now() < give_up, "the run made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL, not finished");
}

#[cfg(unix)]
#[test]
fn killed_score_run_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().expect("tmp");
    let package = exported_package("vit-bert-tiny");
    let dir = corpus(tmp.path(), 72);
    let base = |out: &Path| -> Vec<String> {
        [
            "score",
            s(&package),
            s(&dir),
            "--labels",
            "a cat",
            "a dog, running",
            "-o",
            s(out),
            "--batch-size",
            "1",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let full = tmp.path().join("full.csv");
    let args = base(&full);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(vtde(&args).status.code(), Some(1));

    let out = tmp.path().join("resumed.csv");
    let marker = tmp.path().join("resumed.csv.progress.json");
    let args = base(&out);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_and_kill(&args, &marker, 10);
    let killed = read(&out);
    let full_text = read(&full);
    // What a killed run leaves: the uninterrupted output's beginning (maybe with part of
    // a record after it).
    let done = committed(&marker) as usize;
    let committed_text: String = full_text
        .lines()
        .take(1 + done)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        killed.starts_with(&committed_text),
        "committed records are valid"
    );

    args.push("--resume");
    run_and_kill(&args, &marker, done as u64 + 10);
    let second = vtde(&args);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second.stderr));
    let stderr = text(&second.stderr);
    assert!(stderr.contains("skipped (done before)"), "{stderr}");

    assert_eq!(
        read(&out),
        full_text,
        "resumed output equals the uninterrupted one"
    );
    assert_eq!(
        read(&tmp.path().join("resumed.csv.errors.csv")),
        read(&tmp.path().join("full.csv.errors.csv"))
    );
    let lines: Vec<&str> = full_text.lines().collect();
    let unique: HashSet<&str> = lines
        .iter()
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    assert_eq!(unique.len(), lines.len(), "no duplicates");
    assert_eq!(lines.len(), 1 + 72);

    // A partial last record (cut mid-line) is dropped and redone.
    let cut = full_text.len() - 7;
    std::fs::write(&out, &full_text[..cut]).expect("write");
    let third = vtde(&args);
    assert_eq!(third.status.code(), Some(1), "{}", text(&third.stderr));
    assert!(
        text(&third.stderr).contains("1 scored"),
        "{}",
        text(&third.stderr)
    );
    assert_eq!(read(&out), full_text);

    // Resuming with other labels is refused.
    let mut other = args.clone();
    other[4] = "a bird";
    assert_eq!(vtde(&other).status.code(), Some(2));
}

#[cfg(unix)]
#[test]
fn killed_embed_run_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().expect("tmp");
    let package = exported_package("vit-bert-tiny");
    let dir = corpus(tmp.path(), 60);
    let full = tmp.path().join("full");
    let args = [
        "embed",
        s(&package),
        s(&dir),
        "-o",
        s(&full),
        "--batch-size",
        "1",
    ];
    assert_eq!(vtde(&args).status.code(), Some(1));

    let out = tmp.path().join("resumed");
    let mut args = vec![
        "embed",
        s(&package),
        s(&dir),
        "-o",
        s(&out),
        "--batch-size",
        "1",
    ];
    run_and_kill(&args, &out.join("meta.json"), 10);
    // The killed directory is valid: the .npy loads, and its rows are the first ones.
    let partial = load_npy(&out.join("embeddings.npy"));
    let all = load_npy(&full.join("embeddings.npy"));
    assert!(partial.nrows() >= 10 && partial.nrows() < all.nrows());
    assert_eq!(
        partial,
        all.slice(vtde_runtime::ndarray::s![..partial.nrows(), ..])
    );
    let full_index = read(&full.join("index.jsonl"));
    let index = read(&out.join("index.jsonl"));
    let first: String = full_index
        .lines()
        .take(partial.nrows())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(index.starts_with(&first));

    args.push("--resume");
    let resumed = vtde(&args);
    assert_eq!(resumed.status.code(), Some(1), "{}", text(&resumed.stderr));
    for f in ["embeddings.npy", "index.jsonl", "errors.jsonl"] {
        let (got, want) = (bytes(&out.join(f)), bytes(&full.join(f)));
        assert!(
            got == want,
            "{f} differs from the uninterrupted run's ({} vs {} bytes)",
            got.len(),
            want.len()
        );
    }
    let meta: Value = serde_json::from_str(&read(&out.join("meta.json"))).expect("json");
    assert_eq!(meta["complete"], true);
    assert_eq!(meta["commit"]["rows"], 60);
}

#[test]
fn shards_merge_to_the_unsharded_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let package = exported_package("vit-bert-tiny");
    let dir = corpus(tmp.path(), 30);
    let (mixed, _, _) = mixed_folder(tmp.path());
    let n = 3;

    // Score, CSV, two roots: the merged files equal the unsharded run's byte for byte.
    let score = |out: &Path, shard: Option<String>| {
        let mut args = vec![
            "score".to_string(),
            s(&package).into(),
            s(&mixed).into(),
            s(&dir).into(),
            "--labels".into(),
            "a cat".into(),
            "snow".into(),
            "-o".into(),
            s(out).into(),
            "--batch-size".into(),
            "4".into(),
        ];
        if let Some(shard) = shard {
            args.extend(["--shard".into(), shard]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vtde(&args)
    };
    let whole = tmp.path().join("whole.csv");
    assert_eq!(score(&whole, None).status.code(), Some(1));
    let mut parts = Vec::new();
    let mut seen = 0;
    for k in 0..n {
        let part = tmp.path().join(format!("part{k}.csv"));
        let run = score(&part, Some(format!("{k}/{n}")));
        assert!(
            run.status.code().is_some_and(|c| c <= 1),
            "{}",
            text(&run.stderr)
        );
        seen += read(&part).lines().count() - 1;
        parts.push(part);
    }
    assert_eq!(
        seen,
        read(&whole).lines().count() - 1,
        "each file in one shard"
    );
    let merged = tmp.path().join("merged.csv");
    let mut args = vec!["merge", "-o", s(&merged)];
    // Shards in any order.
    args.extend(parts.iter().rev().map(|p| s(p)));
    let run = vtde(&args);
    assert_eq!(
        run.status.code(),
        Some(1),
        "failures carried: {}",
        text(&run.stderr)
    );
    assert_eq!(read(&merged), read(&whole));
    assert_eq!(
        read(&tmp.path().join("merged.csv.errors.csv")),
        read(&tmp.path().join("whole.csv.errors.csv"))
    );
    let marker =
        |p: &str| -> Value { serde_json::from_str(&read(&tmp.path().join(p))).expect("json") };
    let (m, w) = (
        marker("merged.csv.progress.json"),
        marker("whole.csv.progress.json"),
    );
    assert_eq!(m["commit"], w["commit"]);
    assert_eq!(m["run"], w["run"]);

    // A missing shard is refused.
    let run = vtde(&[
        "merge",
        "-o",
        s(&tmp.path().join("x.csv")),
        s(&parts[0]),
        s(&parts[1]),
    ]);
    assert_eq!(run.status.code(), Some(2));

    // Embeddings directories.
    let embed = |out: &Path, shard: Option<String>| {
        let mut args = vec![
            "embed".to_string(),
            s(&package).into(),
            s(&dir).into(),
            "-o".into(),
            s(out).into(),
        ];
        if let Some(shard) = shard {
            args.extend(["--shard".into(), shard]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vtde(&args)
    };
    let whole = tmp.path().join("whole_emb");
    assert_eq!(embed(&whole, None).status.code(), Some(1));
    let mut args = vec!["merge".to_string(), "-o".into()];
    let merged = tmp.path().join("merged_emb");
    args.push(s(&merged).into());
    for k in 0..n {
        let part = tmp.path().join(format!("emb{k}"));
        let run = embed(&part, Some(format!("{k}/{n}")));
        assert!(
            run.status.code().is_some_and(|c| c <= 1),
            "{}",
            text(&run.stderr)
        );
        args.push(s(&part).into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = vtde(&args);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    for f in ["embeddings.npy", "index.jsonl", "errors.jsonl"] {
        let (got, want) = (bytes(&merged.join(f)), bytes(&whole.join(f)));
        assert!(
            got == want,
            "merged {f} differs from the unsharded run's ({} vs {} bytes)",
            got.len(),
            want.len()
        );
    }
}

/// The CLI turns phone photos upright by default (EXIF orientation applied), and
/// `--no-exif-orientation` gives the pixels as stored, as transformers sees them. Expected
/// embeddings come from the library reading the same file with each setting; the two
/// settings must differ on a rotated photo (orientation 6: 90° clockwise).
#[test]
fn exif_orientation_is_applied_by_default_and_off_on_request() {
    let tmp = tempfile::tempdir().expect("tmp");
    let package = exported_package("vit-bert-tiny");
    let photo = vtde_tests::fixtures_dir().join("images/files/exif_6.jpg");
    let dir = tmp.path().join("photos");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("phone.jpg");
    std::fs::copy(&photo, &file).expect("copy");

    let model = open_model(&package);
    let library = |apply: bool| {
        let options = ImageOptions::default().with_exif_orientation(apply);
        let image = read_image(&file, &options).expect("fixture decodes");
        model.embed_images(&[image]).expect("embeds")
    };
    let (upright, as_stored) = (library(true), library(false));
    assert!(
        max_abs_diff(&upright, &as_stored) > 1e-3,
        "the fixture must be one where orientation matters"
    );

    for (flags, expected) in [
        (&[][..], &upright),
        (&["--exif-orientation"][..], &upright),
        (&["--no-exif-orientation"][..], &as_stored),
    ] {
        let out = tmp
            .path()
            .join(format!("emb{}", flags.len() + flags.concat().len()));
        let mut args = vec!["embed", s(&package), s(&dir), "-o", s(&out)];
        args.extend_from_slice(flags);
        let run = vtde(&args);
        assert_eq!(
            run.status.code(),
            Some(0),
            "{flags:?}: {}",
            text(&run.stderr)
        );
        let rows = load_npy(&out.join("embeddings.npy"));
        assert!(
            max_abs_diff(&rows, expected) < 1e-5,
            "{flags:?}: embedding differs from the library's with the same setting"
        );
    }
}
