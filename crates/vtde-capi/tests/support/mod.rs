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

/// The folder holding the `libvtde` that cargo built with this test (`target/<profile>`).
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}
