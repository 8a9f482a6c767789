//! End-to-end tests of what vtde does to its outputs under pressure: two runs writing one
//! output, outputs that are inputs, file names that are not UTF-8, a run killed while it
//! starts over a finished directory, SIGINT and SIGTERM, `-o /dev/null`, a full disk,
//! and `search` over a damaged directory. Every run is bounded by a timeout.
//!
//! Expected outputs come from uninterrupted runs of the binary on the same files, or
//! from the definitions (the escaping of paths in `formats::paths`, the exit codes of
//! `main`); inputs are compared byte for byte before and after.
#![allow(clippy::unwrap_used)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// No run may take longer than this.
const TIMEOUT: Duration = Duration::from_secs(180);

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/examples")
}

fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vtde"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for a child, killing it (and failing) after [`TIMEOUT`].
fn finish(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("vtde did not finish within {TIMEOUT:?}");
        }
    }
}

fn run_cmd(mut cmd: Command) -> Output {
    finish(cmd.spawn().unwrap())
}

fn vtde<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run_cmd(command(args))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn os(p: &Path) -> OsString {
    p.as_os_str().to_owned()
}

/// The arguments of a score run of `inputs` into `out` (batches of 2 in every run, so
/// that runs compare byte for byte).
fn score_args(inputs: &Path, out: &Path) -> Vec<OsString> {
    vec![
        "score".into(),
        os(&demo()),
        os(inputs),
        "--labels".into(),
        "circle".into(),
        "square".into(),
        "triangle".into(),
        "--batch-size".into(),
        "2".into(),
        "-o".into(),
        os(out),
    ]
}

fn embed_args(inputs: &Path, out: &Path) -> Vec<OsString> {
    vec![
        "embed".into(),
        os(&demo()),
        os(inputs),
        "--batch-size".into(),
        "2".into(),
        "-o".into(),
        os(out),
    ]
}

fn with(mut args: Vec<OsString>, more: &[&str]) -> Vec<OsString> {
    args.extend(more.iter().map(OsString::from));
    args
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&bytes(p)).unwrap()
}

/// `copies` copies of the example images in a few folders.
fn corpus(root: &Path, copies: usize) -> PathBuf {
    let dir = root.join("corpus");
    let names: Vec<PathBuf> = {
        let mut n: Vec<PathBuf> = std::fs::read_dir(examples())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        n.sort();
        n
    };
    for i in 0..copies {
        let sub = dir.join(format!("set{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        let src = &names[i % names.len()];
        let name = src.file_name().unwrap().to_string_lossy();
        std::fs::copy(src, sub.join(format!("{i:03}_{name}"))).unwrap();
    }
    dir
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), bytes(&p)));
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

/// Polls `cond` until it holds; fails after [`TIMEOUT`] or when `child` ends first.
fn wait_until(child: &mut Child, what: &str, cond: impl Fn() -> bool) {
    let give_up = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {what}"
        );
        assert!(Instant::now() < give_up, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `commit.done` of a marker, once it is readable.
fn committed(marker: &Path) -> u64 {
    std::fs::read(marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["commit"]["done"].as_u64())
        .unwrap_or(0)
}

fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// The number in `"N <word>"` of a summary line.
fn summary_count(stderr: &str, word: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("vtde score:") || l.starts_with("vtde embed:"))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    let at = line
        .find(&format!(" {word}"))
        .unwrap_or_else(|| panic!("no {word} in {line}"));
    line[..at]
        .rsplit([' ', ','])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_second_writer_of_a_results_file_is_refused_and_the_first_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference.csv");
    let r = vtde(&score_args(&examples(), &reference));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));

    let out = tmp.path().join("out.csv");
    let marker = tmp.path().join("out.csv.progress.json");
    let mut first = command(&score_args(&examples(), &out))
        .env("VTDE_TEST_BATCH_DELAY_MS", "1000")
        .spawn()
        .unwrap();
    wait_until(&mut first, "the first batch", || committed(&marker) >= 1);
    for args in [
        score_args(&examples(), &out),
        with(score_args(&examples(), &out), &["--resume"]),
        // Another results file, the same errors file.
        with(
            score_args(&examples(), &tmp.path().join("other.csv")),
            &[
                "--errors",
                tmp.path().join("out.csv.errors.csv").to_str().unwrap(),
            ],
        ),
    ] {
        let second = vtde(&args);
        let err = stderr(&second);
        assert_eq!(second.status.code(), Some(2), "{err}");
        assert!(
            err.contains("out.csv") && err.contains("another vtde run"),
            "names the output: {err}"
        );
    }
    assert!(first.try_wait().unwrap().is_none(), "the runs overlapped");
    let first = finish(first);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(
        bytes(&out),
        bytes(&reference),
        "the first run's output is whole"
    );
    assert_eq!(json(&marker)["complete"], true);
    assert!(temporaries(tmp.path()).is_empty());
}

#[test]
fn a_second_writer_of_an_embeddings_directory_is_refused_and_the_first_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let r = vtde(&embed_args(&examples(), &reference));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));

    let out = tmp.path().join("emb");
    let mut merge: Vec<OsString> = vec!["merge".into(), "-o".into(), os(&out)];
    for k in 0..2 {
        let shard = tmp.path().join(format!("shard{k}"));
        let r = vtde(&with(
            embed_args(&examples(), &shard),
            &["--shard", &format!("{k}/2")],
        ));
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        merge.push(os(&shard));
    }
    let mut first = command(&embed_args(&examples(), &out))
        .env("VTDE_TEST_BATCH_DELAY_MS", "1000")
        .spawn()
        .unwrap();
    wait_until(&mut first, "the first batch", || {
        committed(&out.join("meta.json")) >= 1
    });
    let text_file = tmp.path().join("texts.txt");
    std::fs::write(&text_file, "a circle\n").unwrap();
    let texts: Vec<OsString> = vec![
        "embed-text".into(),
        os(&demo()),
        "--texts-file".into(),
        os(&text_file),
        "-o".into(),
        os(&out),
    ];
    for args in [embed_args(&examples(), &out), texts, merge] {
        let second = vtde(&args);
        let err = stderr(&second);
        assert_eq!(second.status.code(), Some(2), "{err}");
        assert!(
            err.contains("emb/embeddings.npy") && err.contains("another vtde run"),
            "names the output: {err}"
        );
    }
    assert!(first.try_wait().unwrap().is_none(), "the runs overlapped");
    let first = finish(first);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    for f in ["embeddings.npy", "index.jsonl", "errors.jsonl"] {
        assert_eq!(bytes(&out.join(f)), bytes(&reference.join(f)), "{f}");
    }
    assert_eq!(json(&out.join("meta.json"))["complete"], true);
    assert!(temporaries(&out).is_empty());
}

/// Runs `args`, which must be refused (exit 2, naming `names`), leaving `dirs` as they were.
fn refused(args: &[OsString], names: &[&str], dirs: &[&Path]) {
    let before: Vec<_> = dirs.iter().map(|d| snapshot(d)).collect();
    let out = vtde(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for n in names {
        assert!(err.contains(n), "{args:?}: the message names {n}: {err}");
    }
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    let after: Vec<_> = dirs.iter().map(|d| snapshot(d)).collect();
    assert!(before == after, "{args:?} changed its inputs");
}

#[test]
fn outputs_that_are_inputs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    copy_dir(&examples(), &images);
    let pkg = tmp.path().join("pkg");
    copy_dir(&demo(), &pkg);
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let image = images.join("red_circle.png");
    let score = |inputs: &Path, out: &Path| {
        let mut a = score_args(inputs, out);
        a[1] = os(&pkg);
        a
    };

    // -o an input image, named or found in a folder; also through a hard link.
    refused(&score(&image, &image), &["red_circle.png"], &[&images]);
    refused(&score(&images, &image), &["red_circle.png"], &[&images]);
    let link = work.join("link.csv");
    std::fs::hard_link(&image, &link).unwrap();
    refused(
        &score(&images, &link),
        &["link.csv", "red_circle.png"],
        &[&images],
    );
    std::fs::remove_file(&link).unwrap();
    // --errors an input image.
    refused(
        &with(
            score(&images, &work.join("s.csv")),
            &["--errors", image.to_str().unwrap()],
        ),
        &["red_circle.png"],
        &[&images, &work],
    );
    // The labels file.
    let labels = work.join("labels.txt");
    std::fs::write(&labels, "circle\nsquare\n").unwrap();
    let labels_args: Vec<OsString> = vec![
        "score".into(),
        os(&pkg),
        os(&images),
        "--labels-file".into(),
        os(&labels),
        "-o".into(),
        os(&labels),
    ];
    refused(&labels_args, &["labels.txt"], &[&work, &images]);
    // A file of the package: vtde.json, or its weights.
    for f in ["vtde.json", "vision.onnx.data"] {
        refused(&score(&images, &pkg.join(f)), &[f], &[&pkg, &images]);
    }
    // --errors X -o X, even when X does not exist yet; and the marker.
    let x = work.join("x.csv");
    refused(
        &with(score(&images, &x), &["--errors", x.to_str().unwrap()]),
        &["x.csv"],
        &[&work],
    );
    assert!(!x.exists());
    refused(
        &with(
            score(&images, &x),
            &[
                "--errors",
                work.join("x.csv.progress.json").to_str().unwrap(),
            ],
        ),
        &["x.csv.progress.json"],
        &[&work],
    );

    // An embeddings directory: its index as the texts file, as a search's output.
    let emb = work.join("emb");
    let mut e = embed_args(&images, &emb);
    e[1] = os(&pkg);
    let made = vtde(&e);
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let texts: Vec<OsString> = vec![
        "embed-text".into(),
        os(&pkg),
        "--texts-file".into(),
        os(&emb.join("index.jsonl")),
        "-o".into(),
        os(&emb),
    ];
    refused(&texts, &["index.jsonl"], &[&work]);
    let search: Vec<OsString> = vec![
        "search".into(),
        os(&emb),
        "circle".into(),
        "-o".into(),
        os(&emb.join("index.jsonl")),
    ];
    refused(&search, &["index.jsonl"], &[&work]);
    let search_pkg: Vec<OsString> = vec![
        "search".into(),
        os(&emb),
        "circle".into(),
        "-o".into(),
        os(&pkg.join("text.onnx")),
    ];
    refused(&search_pkg, &["text.onnx"], &[&work, &pkg]);
}

#[test]
fn merge_refuses_an_output_that_is_one_of_its_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let shard = |k: u32, out: &Path, embed: bool| {
        let args = if embed {
            embed_args(&examples(), out)
        } else {
            score_args(&examples(), out)
        };
        let r = vtde(&with(args, &["--shard", &format!("{k}/2")]));
        assert!(r.status.code().unwrap() <= 1, "{}", stderr(&r));
    };
    let (s0, s1) = (tmp.path().join("s0.csv"), tmp.path().join("s1.csv"));
    shard(0, &s0, false);
    shard(1, &s1, false);
    let merge = |out: &Path, a: &Path, b: &Path| -> Vec<OsString> {
        vec!["merge".into(), "-o".into(), os(out), os(a), os(b)]
    };
    refused(&merge(&s0, &s0, &s1), &["s0.csv"], &[tmp.path()]);
    // The same file through another name.
    let alias = tmp.path().join("sub/../s1.csv");
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    refused(&merge(&alias, &s0, &s1), &["s1.csv"], &[tmp.path()]);

    let (d0, d1) = (tmp.path().join("d0"), tmp.path().join("d1"));
    shard(0, &d0, true);
    shard(1, &d1, true);
    refused(&merge(&d1, &d0, &d1), &["d1"], &[tmp.path()]);
    // Merging elsewhere works.
    let ok = vtde(&merge(&tmp.path().join("all.csv"), &s0, &s1));
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

/// Creates a file named by raw bytes in `dir`, a copy of `src`.
#[cfg(unix)]
fn raw_file(dir: &Path, name: &[u8], src: &str) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let path = dir.join(OsStr::from_bytes(name));
    std::fs::copy(examples().join(src), &path).unwrap();
    path
}

/// The CSV rows of a score file (no field of these holds a comma or quote): path → probs.
fn rows(text: &str) -> Vec<(String, String)> {
    text.lines()
        .skip(1)
        .map(|l| {
            let (p, rest) = l.split_once(',').unwrap();
            (p.to_owned(), rest.to_owned())
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn names_that_are_not_utf8_are_written_apart_and_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("odd");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    raw_file(&dir, b"\xff.png", "red_circle.png");
    raw_file(&dir, b"back\\slash.png", "blue_square.png");
    let out = tmp.path().join("out.csv");
    let r = vtde(&score_args(&dir, &out));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    // A second file whose name differs only in its invalid byte: --resume must take it.
    raw_file(&dir, b"\xfe.png", "blue_triangle.png");
    let r = vtde(&with(score_args(&dir, &out), &["--resume"]));
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(
        err.contains("1 scored, 2 skipped"),
        "the new file is scored, the others skipped: {err}"
    );
    let got = rows(&String::from_utf8(bytes(&out)).unwrap());
    // The written forms, by the definition: invalid bytes as \xNN, backslashes doubled.
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("{d}/back\\\\slash.png"),
            format!("{d}/\\xff.png"),
            format!("{d}/\\xfe.png"),
        ]
    );
    // Each row holds its own image's scores: those of the same images under plain names.
    let plain = tmp.path().join("plain.csv");
    let r = vtde(&score_args(&examples(), &plain));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let reference = rows(&String::from_utf8(bytes(&plain)).unwrap());
    let probs = |name: &str| {
        reference
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(got[0].1, probs("/blue_square.png"));
    assert_eq!(got[1].1, probs("/red_circle.png"));
    assert_eq!(got[2].1, probs("/blue_triangle.png"));

    // A fresh run writes them in walk order (raw bytes); embeddings index them alike.
    let fresh = tmp.path().join("fresh.csv");
    let r = vtde(&score_args(&dir, &fresh));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let fresh_paths: Vec<String> = rows(&String::from_utf8(bytes(&fresh)).unwrap())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        fresh_paths,
        [
            format!("{d}/back\\\\slash.png"),
            format!("{d}/\\xfe.png"),
            format!("{d}/\\xff.png"),
        ]
    );
    let emb = tmp.path().join("emb");
    let r = vtde(&embed_args(&dir, &emb));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let index: Vec<String> = String::from_utf8(bytes(&emb.join("index.jsonl")))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(index, fresh_paths);
}

#[cfg(unix)]
#[test]
fn merge_orders_names_that_are_not_utf8_as_an_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("odd");
    std::fs::create_dir(&dir).unwrap();
    // Raw order: a, m, z, \xfe, \xff; escaped text would put \xfe and \xff first.
    for (name, src) in [
        (&b"a.png"[..], "red_circle.png"),
        (b"\xff.png", "blue_square.png"),
        (b"z.png", "green_triangle.png"),
        (b"\xfe.png", "purple_cross.png"),
        (b"m\\.png", "yellow_star.png"),
        (b"\xfe\xfe.png", "blue_triangle.png"),
    ] {
        raw_file(&dir, name, src);
    }
    let whole = tmp.path().join("whole.csv");
    let r = vtde(&score_args(&dir, &whole));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let mut shards: Vec<OsString> = vec!["merge".into(), "-o".into()];
    let merged = tmp.path().join("merged.csv");
    shards.push(os(&merged));
    for k in 0..3 {
        let s = tmp.path().join(format!("s{k}.csv"));
        let r = vtde(&with(score_args(&dir, &s), &["--shard", &format!("{k}/3")]));
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        shards.push(os(&s));
    }
    let r = vtde(&shards);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(
        String::from_utf8(bytes(&merged)).unwrap(),
        String::from_utf8(bytes(&whole)).unwrap()
    );
}

/// What a killed embeddings directory must hold: no more committed rows than the `.npy`
/// header counts, its data holds and `index.jsonl` lists; `complete` only over all rows.
fn assert_consistent(dir: &Path, all_rows: u64) {
    let meta = json(&dir.join("meta.json"));
    let rows = meta["commit"]["rows"].as_u64().unwrap();
    let npy = bytes(&dir.join("embeddings.npy"));
    let header = String::from_utf8_lossy(&npy[10..128]).into_owned();
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let dims: Vec<u64> = shape[..shape.find(')').unwrap()]
        .split(',')
        .map(|d| d.trim().parse().unwrap())
        .collect();
    let index_lines = bytes(&dir.join("index.jsonl"))
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64;
    let data_rows = (npy.len() as u64 - 128) / (dims[1] * 4);
    assert!(
        rows <= dims[0] && rows <= data_rows && rows <= index_lines,
        "meta.json commits {rows} rows; the header counts {}, the data holds {data_rows}, \
         the index {index_lines}",
        dims[0]
    );
    if meta["complete"] == true {
        assert_eq!(rows, all_rows, "complete: true over {rows} rows");
    }
}

#[test]
fn a_fresh_run_killed_over_a_finished_directory_never_claims_it_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let r = vtde(&embed_args(&examples(), &pristine));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let all = json(&pristine.join("meta.json"))["commit"]["rows"]
        .as_u64()
        .unwrap();
    assert_eq!(all, 8);
    let full_len = bytes(&pristine.join("embeddings.npy")).len() as u64;
    let dir = tmp.path().join("emb");
    // Kills at the moment embeddings.npy is cut, and at fixed times in the first 150 ms.
    let kills: Vec<Option<u64>> = [None, None, None]
        .into_iter()
        .chain((0..=150).step_by(25).map(Some))
        .collect();
    for kill_after in kills {
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&pristine, &dir);
        let mut child = command(&embed_args(&examples(), &dir))
            .env("VTDE_TEST_BATCH_DELAY_MS", "2000")
            .spawn()
            .unwrap();
        match kill_after {
            Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
            None => {
                let npy = dir.join("embeddings.npy");
                let give_up = Instant::now() + TIMEOUT;
                while std::fs::metadata(&npy).map_or(full_len, |m| m.len()) == full_len {
                    assert!(Instant::now() < give_up, "the run never cut the file");
                    std::hint::spin_loop();
                }
            }
        }
        child.kill().unwrap();
        finish(child);
        assert_consistent(&dir, all);
        // The strict reader agrees, and a resume finishes to the uninterrupted result.
        let search = vtde(&["search".as_ref(), dir.as_os_str(), "a circle".as_ref()]);
        assert_eq!(search.status.code(), Some(0), "{}", stderr(&search));
        let resumed = vtde(&with(embed_args(&examples(), &dir), &["--resume"]));
        assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
        for f in ["embeddings.npy", "index.jsonl", "errors.jsonl"] {
            assert_eq!(bytes(&dir.join(f)), bytes(&pristine.join(f)), "{f}");
        }
        assert!(temporaries(&dir).is_empty());
    }
}

/// Starts `args` slowed down, sends `signal` once `marker` commits at least 2 items, and
/// returns the run's output.
fn interrupt(args: &[OsString], marker: &Path, signal: &str) -> Output {
    let mut child = command(args)
        .env("VTDE_TEST_BATCH_DELAY_MS", "150")
        .spawn()
        .unwrap();
    wait_until(&mut child, "two items were committed", || {
        committed(marker) >= 2
    });
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    finish(child)
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_commit_the_batch_in_hand_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let images = corpus(tmp.path(), 24);

    // Score, SIGTERM: 143.
    let reference = tmp.path().join("reference.csv");
    let r = vtde(&score_args(&images, &reference));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let out = tmp.path().join("out.csv");
    let marker = tmp.path().join("out.csv.progress.json");
    let stopped = interrupt(&score_args(&images, &out), &marker, "TERM");
    let err = stderr(&stopped);
    assert_eq!(stopped.status.code(), Some(143), "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    let done = committed(&marker);
    assert!((2..24).contains(&done), "stopped midway: {done}");
    assert_eq!(summary_count(&err, "scored"), done, "{err}");
    assert_eq!(json(&marker)["complete"], false);
    // What is committed is what the file holds: the reference's first lines.
    let text = String::from_utf8(bytes(&out)).unwrap();
    assert_eq!(text.lines().count() as u64, done + 1);
    assert!(String::from_utf8(bytes(&reference))
        .unwrap()
        .starts_with(&text));
    let resumed = vtde(&with(score_args(&images, &out), &["--resume"]));
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_eq!(bytes(&out), bytes(&reference));

    // Embed, SIGINT: 130.
    let reference = tmp.path().join("reference-emb");
    let r = vtde(&embed_args(&images, &reference));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let emb = tmp.path().join("emb");
    let stopped = interrupt(&embed_args(&images, &emb), &emb.join("meta.json"), "INT");
    let err = stderr(&stopped);
    assert_eq!(stopped.status.code(), Some(130), "{err}");
    assert!(err.contains("SIGINT"), "{err}");
    let done = committed(&emb.join("meta.json"));
    assert!((2..24).contains(&done), "stopped midway: {done}");
    assert_eq!(summary_count(&err, "embedded"), done, "{err}");
    assert_consistent(&emb, 24);
    let resumed = vtde(&with(embed_args(&images, &emb), &["--resume"]));
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    for f in ["embeddings.npy", "index.jsonl", "errors.jsonl"] {
        assert_eq!(bytes(&emb.join(f)), bytes(&reference.join(f)), "{f}");
    }
}

#[cfg(unix)]
#[test]
fn dev_null_is_an_output_that_is_written_as_a_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let null = Path::new("/dev/null");
    let beside = ["/dev/null.progress.json", "/dev/null.errors.csv"];
    let existed: Vec<bool> = beside.iter().map(|p| Path::new(p).exists()).collect();
    let r = vtde(&score_args(&examples(), null));
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(err.contains("8 scored"), "{err}");
    for (p, existed) in beside.iter().zip(existed) {
        assert_eq!(
            Path::new(p).exists(),
            existed,
            "{p}: nothing beside /dev/null"
        );
    }
    // --errors still works with it.
    let errors = tmp.path().join("errors.csv");
    let r = vtde(&with(
        score_args(&examples(), null),
        &["--errors", errors.to_str().unwrap()],
    ));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(bytes(&errors), b"path,error\n");
    // --resume needs a file; an embeddings directory, merge: a clear refusal.
    for args in [
        with(score_args(&examples(), null), &["--resume"]),
        embed_args(&examples(), null),
        vec!["merge".into(), "-o".into(), os(null), os(&errors)],
    ] {
        let r = vtde(&args);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("/dev/null") && !err.contains("Invalid argument"),
            "{err}"
        );
    }
    // search -o /dev/null.
    let emb = tmp.path().join("emb");
    let r = vtde(&embed_args(&examples(), &emb));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let r = vtde(&[
        "search".as_ref(),
        emb.as_os_str(),
        "a circle".as_ref(),
        "-o".as_ref(),
        null.as_os_str(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
}

/// Runs `args` with the file size limit of `sh`'s `ulimit -f` (512-byte blocks), and
/// SIGXFSZ ignored: writes past the limit fail with EFBIG, as on a full disk.
#[cfg(unix)]
fn with_file_limit(blocks: u32, args: &[OsString]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_vtde"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_cmd(cmd)
}

#[cfg(unix)]
#[test]
fn a_full_disk_counts_only_committed_rows_and_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let images = corpus(tmp.path(), 96);
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("scores.csv");
    // 12 labels: rows of ~150 bytes, the results outgrow 12 KiB; the marker (~1.2 KiB)
    // fits.
    let mut args = score_args(&images, &out);
    let more = [
        "star", "cross", "heart", "moon", "ring", "kite", "oval", "wave", "leaf",
    ];
    let at = args.iter().position(|a| a == "--batch-size").unwrap();
    for (i, label) in more.iter().enumerate() {
        args.insert(at + i, OsString::from(label));
    }
    let r = with_file_limit(12, &args);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("scores.csv"), "{err}");
    let marker = json(&out_dir.join("scores.csv.progress.json"));
    let done = marker["commit"]["done"].as_u64().unwrap();
    assert!(done > 0 && done < 96, "{done}");
    assert_eq!(summary_count(&err, "scored"), done, "{err}");
    // The file holds the committed rows and nothing after them.
    let text = String::from_utf8(bytes(&out)).unwrap();
    assert_eq!(text.lines().count() as u64, done + 1);
    assert_eq!(marker["commit"]["output_bytes"], text.len() as u64);
    assert!(
        temporaries(&out_dir).is_empty(),
        "{:?}",
        temporaries(&out_dir)
    );
    // The same run resumes once there is room.
    let r = vtde(&with(args.clone(), &["--resume"]));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(String::from_utf8(bytes(&out)).unwrap().lines().count(), 97);

    // A marker that cannot be written (80 labels make it ~2.5 KiB): no temporary left.
    let labels: Vec<String> = (0..80).map(|i| format!("label{i:02}")).collect();
    let mut args: Vec<OsString> = vec!["score".into(), os(&demo()), os(&examples())];
    args.push("--labels".into());
    args.extend(labels.iter().map(OsString::from));
    args.extend(["-o".into(), os(&out_dir.join("wide.csv"))]);
    let r = with_file_limit(2, &args);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("wide.csv.progress.json"), "{err}");
    assert!(
        temporaries(&out_dir).is_empty(),
        "{:?}",
        temporaries(&out_dir)
    );
}

/// An `.npy` header as numpy writes it (version 1.0, padded to 128 bytes).
fn npy_header(rows: u64, cols: u64) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&118u16.to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(127, b' ');
    h.push(b'\n');
    h
}

#[test]
fn search_refuses_a_directory_that_does_not_hold_the_rows_meta_json_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let emb = tmp.path().join("emb");
    let r = vtde(&embed_args(&examples(), &emb));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let search = |dir: &Path| vtde(&["search".as_ref(), dir.as_os_str(), "a circle".as_ref()]);
    let ok = search(&emb);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let npy = bytes(&emb.join("embeddings.npy"));
    let data = &npy[128..];
    type Damage<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Damage<'_>, &str)> = vec![
        (
            // The same bytes as 16 rows of 32 values: another width.
            "width",
            Box::new(|d: &Path| {
                let mut f = npy_header(16, 32);
                f.extend_from_slice(data);
                std::fs::write(d.join("embeddings.npy"), f).unwrap();
            }),
            "32",
        ),
        (
            "header rows",
            Box::new(|d: &Path| {
                let mut f = npy_header(3, 64);
                f.extend_from_slice(data);
                std::fs::write(d.join("embeddings.npy"), f).unwrap();
            }),
            "embeddings.npy",
        ),
        (
            "data rows",
            Box::new(|d: &Path| {
                std::fs::write(d.join("embeddings.npy"), &npy[..128 + 3 * 64 * 4]).unwrap();
            }),
            "embeddings.npy",
        ),
        (
            "index lines",
            Box::new(|d: &Path| {
                let index = bytes(&d.join("index.jsonl"));
                let text = String::from_utf8(index).unwrap();
                let kept: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
                std::fs::write(d.join("index.jsonl"), kept).unwrap();
            }),
            "index.jsonl",
        ),
    ];
    for (what, damage, named) in cases {
        let dir = tmp.path().join(what.replace(' ', "_"));
        copy_dir(&emb, &dir);
        damage(&dir);
        let r = search(&dir);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{what}: {err}");
        assert!(r.stdout.is_empty(), "{what}: no results");
        assert!(
            err.contains(named) && err.contains("meta.json"),
            "{what}: {err}"
        );
    }
}
