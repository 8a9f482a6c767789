//! The C programs, compiled with the system C compiler (`$CC`, else `cc`) against
//! `include/vtde.h` and the `libvtde` cargo just built: `examples/c/score.c` must print
//! the numbers the Rust library computes, and `tests/c/bad_input.c` must get an error
//! status and message for every bad argument, never a crash.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{demo_package, example_images, library_dir, repo_root, LABELS};
use vtde_runtime::image::{DynamicImage, RgbImage};
use vtde_runtime::{decode_image, ImageOptions, Model, RuntimeOptions};

/// Compiles one C file into `out_dir` and returns the executable.
fn compile(source: &Path, out_dir: &Path) -> PathBuf {
    let exe = out_dir.join(source.file_stem().unwrap());
    let lib = library_dir();
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&compiler)
        .arg("-std=c99")
        .arg("-Wall")
        .arg("-Wextra")
        .arg("-Werror")
        .arg("-I")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
        .arg(source)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg("-lvtde")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

fn run(exe: &Path, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(exe).args(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{} failed ({}):\n{stdout}\n{}",
        exe.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// One CSV row of the example: its name and probabilities.
fn parse_row(line: &str) -> (String, Vec<f32>) {
    let mut fields = line.split(',');
    let name = fields.next().unwrap().to_string();
    (name, fields.map(|v| v.parse().unwrap()).collect())
}

#[test]
fn c_example_prints_the_rust_librarys_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(&repo_root().join("examples/c/score.c"), dir.path());
    let images = example_images();
    let package = demo_package();
    let mut args: Vec<&std::ffi::OsStr> = vec![package.as_os_str()];
    args.extend(images.iter().map(|p| p.as_os_str()));
    args.push("--".as_ref());
    args.extend(LABELS.iter().map(std::ffi::OsStr::new));
    let stdout = run(&exe, &args);
    let mut lines = stdout.lines();
    assert_eq!(lines.next().unwrap(), format!("image,{}", LABELS.join(",")));
    let rows: Vec<(String, Vec<f32>)> = lines.map(parse_row).collect();
    assert_eq!(rows.len(), images.len() + 2, "{stdout}");

    // The same through the Rust library, with the same options.
    let model = Model::open(&package, &RuntimeOptions::default().with_threads(2)).unwrap();
    let labels = model.embed_labels(&LABELS, &["{}"]).unwrap();
    let files = model.embed_image_files(&images).unwrap();
    assert!(files.outcomes.iter().all(|o| o.is_ok()));
    let bytes = std::fs::read(&images[0]).unwrap();
    let memory = decode_image(&bytes, &ImageOptions::default()).unwrap();
    let red = RgbImage::from_pixel(40, 30, vtde_runtime::image::Rgb([220, 20, 30]));
    let extra = model
        .embed_images(&[memory, DynamicImage::ImageRgb8(red)])
        .unwrap();
    let mut expected = Vec::new();
    for (embeds, names) in [
        (
            files.embeddings.view(),
            images
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>(),
        ),
        (
            extra.view(),
            vec!["memory:first".to_string(), "rgb8:red".to_string()],
        ),
    ] {
        let probs = model.score(embeds, labels.view()).unwrap().probs_per_image;
        for (row, name) in probs.rows().into_iter().zip(names) {
            expected.push((name, row.to_vec()));
        }
    }
    // %.9g prints a float exactly: the C program got the very same numbers.
    assert_eq!(rows, expected);
    // And they make sense: each example's best label is in its file name.
    for (name, probs) in &rows[..images.len()] {
        let best = probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        let label = LABELS[best].trim_start_matches("a ").replace(' ', "_");
        assert!(name.contains(&label), "{name}: best label {}", LABELS[best]);
    }
}

#[test]
fn c_program_with_bad_input_gets_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/bad_input.c"),
        dir.path(),
    );
    // A PNG signature followed by garbage.
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nthis is not the rest of a png").unwrap();
    let package = demo_package();
    let stdout = run(&exe, &[package.as_os_str(), corrupt.as_os_str()]);
    assert!(stdout.ends_with("0 failures\n"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // Every case ran (the program did not stop early).
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 38,
        "{stdout}"
    );
    // Messages say what is wrong.
    for needle in [
        "ok open-missing-package status=2 message=",
        "/nonexistent/vtde-package",
        "the stride is 23 bytes, less than a row of 8 RGB pixels (24 bytes)",
        "image 0: the buffer is empty",
        "unknown execution provider \"gpu\"",
        "texts[1] is NULL",
        "/nonexistent/libonnxruntime.so",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
}
