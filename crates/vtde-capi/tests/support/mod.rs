//! Shared helpers of the C API tests: the repository's demo package and example images,
//! and where cargo put `libvtde`.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `models/demo`.
pub fn demo_package() -> PathBuf {
    repo_root().join("models/demo")
}

/// The PNG files of `models/examples`, sorted.
pub fn example_images() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("models/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    files
}

/// The labels the README scores the examples with.
pub const LABELS: [&str; 6] = [
    "a red circle",
    "a blue square",
    "a green triangle",
    "a yellow star",
    "a purple cross",
    "a blue triangle",
];

/// The folder holding `libvtde` (`target/<profile>`), current with the sources.
///
/// Cargo builds the shared library with the crate, but its file name carries no hash, so
/// builds of other feature sets (`cargo build -p vtde-capi` after `cargo test`) share it:
/// when the library is older than a source it was built from, it is rebuilt here. In CI
/// (one `cargo test --workspace`) it is always current and nothing is rebuilt.
pub fn library_dir() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            // target/<profile>/deps/<test binary>
            let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            let library = dir.join(format!(
                "{}vtde{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ));
            let built = std::fs::metadata(&library).and_then(|m| m.modified()).ok();
            let root = repo_root();
            let newest_source = [
                "crates/vtde-capi/src",
                "crates/vtde-runtime/src",
                "crates/vtde-package/src",
            ]
            .iter()
            .map(|d| newest_modification(&root.join(d)))
            .max()
            .flatten();
            if built.is_none() || built < newest_source {
                eprintln!(
                    "{} is missing or older than its sources: building it",
                    library.display()
                );
                build_library(&dir);
            }
            dir
        })
        .clone()
}

/// The latest modification time of the files under `dir`.
fn newest_modification(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_modification(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(time);
    }
    newest
}

/// `cargo build --lib -p vtde-capi` into this test's target folder and profile.
fn build_library(dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build
        .args([
            "build",
            "--quiet",
            "--lib",
            "-p",
            "vtde-capi",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.parent().unwrap());
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building libvtde failed");
}
