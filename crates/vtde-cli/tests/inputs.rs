//! What `vtde` reads, end to end: special files named as images (devices, FIFOs,
//! sockets) are refused at once and reported, never read; thread counts are bounded; links
//! that lead nowhere are reported; a decoder panic is one line naming the file; images
//! that only PIL used to read decode as PIL decodes them. Every run is bounded by a
//! timeout, so that a regression fails instead of hanging.
//!
//! Uses the committed demo package (`models/demo`) and the image fixtures.

#![allow(clippy::unwrap_used)]
#![cfg(unix)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn demo() -> String {
    root().join("models/demo").to_str().unwrap().to_owned()
}

fn image(name: &str) -> PathBuf {
    root().join("tests/fixtures/images/files").join(name)
}

fn pillow_image(name: &str) -> PathBuf {
    root().join("tests/fixtures/images/pillow/files").join(name)
}

/// Runs vtde with `args`; fails the test if it runs for more than 60 s (killing it).
fn vtde(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vtde"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let _ = child.wait();
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("vtde {args:?} ran for over 60 s (killed); stderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// No panic text, backtrace or doubled message on stderr.
fn assert_clean(stderr: &str) {
    for bad in [
        "panicked at",
        "backtrace",
        "RUST_BACKTRACE",
        "stack backtrace",
    ] {
        assert!(!stderr.contains(bad), "{bad:?} on stderr: {stderr}");
    }
}

/// The stderr lines that name `path`.
fn lines_naming<'a>(stderr: &'a str, path: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(path)).collect()
}

#[test]
fn dev_zero_on_the_command_line_is_refused_at_once() {
    let good = image("jpeg_420.jpg");
    let start = Instant::now();
    let out = vtde(&[
        "score",
        &demo(),
        "/dev/zero",
        s(&good),
        "--labels",
        "a",
        "b",
    ]);
    let stderr = text(&out.stderr);
    assert!(start.elapsed() < Duration::from_secs(30), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_clean(&stderr);
    let lines = lines_naming(&stderr, "/dev/zero");
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("is a character device, not a regular file"),
        "{stderr}"
    );
    // The good image is still scored.
    assert!(text(&out.stdout).contains("jpeg_420.jpg"));
}

#[test]
fn a_link_to_dev_zero_is_named_as_the_device_not_as_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("zero.jpg");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let out = vtde(&["score", &demo(), s(&link), "--labels", "a"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_clean(&stderr);
    assert!(
        stderr.contains("zero.jpg: is a character device, not a regular file"),
        "{stderr}"
    );
}

#[test]
fn a_fifo_on_the_command_line_and_in_a_folder_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe.png");
    mkfifo(&fifo);
    let folder = tmp.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    mkfifo(&folder.join("in_folder.jpg"));
    std::fs::copy(image("jpeg_420.jpg"), folder.join("good.jpg")).unwrap();
    let out = vtde(&["score", &demo(), s(&fifo), s(&folder), "--labels", "a"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_clean(&stderr);
    for name in ["pipe.png", "in_folder.jpg"] {
        let lines = lines_naming(&stderr, name);
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains("is a FIFO (named pipe), not a regular file"),
            "{stderr}"
        );
    }
    assert!(text(&out.stdout).contains("good.jpg"));
}

#[test]
fn a_fifo_as_the_search_image_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let embeddings = tmp.path().join("emb");
    let out = vtde(&[
        "embed",
        &demo(),
        s(&image("jpeg_420.jpg")),
        "-o",
        s(&embeddings),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fifo = tmp.path().join("query.png");
    mkfifo(&fifo);
    let out = vtde(&["search", s(&embeddings), "--image", s(&fifo)]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_clean(&stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("query.png: is a FIFO (named pipe), not a regular file"),
        "{stderr}"
    );
}

#[test]
fn thread_counts_beyond_the_bounds_are_usage_errors() {
    let good = image("jpeg_420.jpg");
    for (flag, value, range) in [
        ("--threads", "4096", "1..=256"),
        ("--intra-op-threads", "257", "1..=256"),
        ("--inter-op-threads", "4096", "1..=64"),
        ("--threads", "0", "1..=256"),
    ] {
        let out = vtde(&["score", &demo(), s(&good), "--labels", "a", flag, value]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(range), "{flag} {value}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    // The bounds themselves are accepted.
    let out = vtde(&[
        "score",
        &demo(),
        s(&good),
        "--labels",
        "a",
        "--threads",
        "4",
        "--inter-op-threads",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn dangling_and_looping_links_in_a_folder_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(image("jpeg_420.jpg"), folder.join("good.jpg")).unwrap();
    std::os::unix::fs::symlink("gone.jpg", folder.join("dangling.jpg")).unwrap();
    std::os::unix::fs::symlink("loop_b.jpg", folder.join("loop_a.jpg")).unwrap();
    std::os::unix::fs::symlink("loop_a.jpg", folder.join("loop_b.jpg")).unwrap();
    let errors = tmp.path().join("errors.csv");
    let out = vtde(&[
        "score",
        &demo(),
        s(&folder),
        "--labels",
        "a",
        "-o",
        s(&tmp.path().join("scores.csv")),
        "--errors",
        s(&errors),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_clean(&stderr);
    let errors = std::fs::read_to_string(&errors).unwrap();
    for (name, reason) in [
        (
            "dangling.jpg",
            "dangling symbolic link: its target gone.jpg does not exist",
        ),
        (
            "loop_a.jpg",
            "symbolic link loop: loop_b.jpg leads back to itself",
        ),
        (
            "loop_b.jpg",
            "symbolic link loop: loop_a.jpg leads back to itself",
        ),
    ] {
        let lines = lines_naming(&stderr, &format!("photos/{name}: "));
        assert_eq!(lines.len(), 1, "{name}: {stderr}");
        assert!(lines[0].contains(reason), "{name}: {stderr}");
        assert!(
            errors
                .lines()
                .any(|l| l.contains(name) && l.contains(reason)),
            "{name} in the errors file: {errors}"
        );
    }
}

#[test]
fn a_decoder_panic_is_one_line_naming_the_file() {
    // Pillow's tiled planar 16-bit TIFF: the `tiff` crate panics on it (an assertion in
    // its chunk decoder). The panic is caught; stderr gets one line, no panic text.
    let tiff = pillow_image("tiff_tiled_planar_16bit_RGB.tiff");
    let good = image("jpeg_420.jpg");
    let out = vtde(&["score", &demo(), s(&tiff), s(&good), "--labels", "a"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_clean(&stderr);
    let lines = lines_naming(&stderr, "tiff_tiled_planar_16bit_RGB.tiff");
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("assertion failed: buf.len()\n"),
        "{stderr}"
    );
    // Only the failure line and the summary.
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
}

#[test]
fn a_missing_package_file_is_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("pkg");
    std::fs::create_dir(&package).unwrap();
    for entry in std::fs::read_dir(demo()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), package.join(entry.file_name())).unwrap();
    }
    let good = image("jpeg_420.jpg");
    std::fs::remove_file(package.join("tokenizer.json")).unwrap();
    std::fs::create_dir(package.join("tokenizer.json")).unwrap();
    let out = vtde(&["score", s(&package), s(&good), "--labels", "a"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tokenizer.json: is a directory, not a file"),
        "{stderr}"
    );
    assert!(!stderr.contains("not found"), "{stderr}");
    std::fs::remove_dir(package.join("tokenizer.json")).unwrap();
    let out = vtde(&["score", s(&package), s(&good), "--labels", "a"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tokenizer.json"), "{stderr}");
    // The cause is said once, not "...: X: X".
    let line = stderr.lines().next().unwrap();
    let cause = line.rsplit(": ").next().unwrap();
    assert_eq!(line.matches(cause).count(), 1, "{stderr}");
    // A missing image file too.
    let out = vtde(&[
        "score",
        &demo(),
        s(&tmp.path().join("missing.jpg")),
        "--labels",
        "a",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = lines_naming(&stderr, "missing.jpg")[0];
    let cause = line.rsplit(": ").next().unwrap();
    assert_eq!(line.matches(cause).count(), 1, "{stderr}");
}

#[test]
fn pillow_images_vtde_now_reads_are_scored() {
    // The float and signed TIFFs, the GIF without a colour table and the BMP with a bad
    // planes field decode (their pixels are checked against PIL's in the runtime's
    // `tests/images.rs`); here they go through the whole command.
    let files: Vec<PathBuf> = [
        "10ct_32bit_128.tiff",
        "16bit.s.tif",
        "16_bit_binary_pgm.tiff",
        "8bit.s.tif",
        "no_palette.gif",
        "badplanes.bmp",
    ]
    .iter()
    .map(|f| pillow_image(f))
    .collect();
    let mut args = vec!["score".to_string(), demo()];
    args.extend(files.iter().map(|f| s(f).to_owned()));
    args.extend(["--labels".into(), "a".into(), "b".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vtde(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 1 + files.len());
}
