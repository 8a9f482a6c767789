//! Turning the paths on the command line into a deterministic list of image files:
//! files as given, directories walked recursively in sorted order, hidden entries and
//! non-image extensions skipped, symlinked directories not followed (no loops).

use std::path::{Path, PathBuf};

/// File extensions (lowercase) treated as images when walking directories. Files named
/// explicitly on the command line are always tried, whatever their extension.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"];

/// A path that could not be listed, with the reason.
#[derive(Debug)]
pub struct WalkError {
    pub path: PathBuf,
    pub reason: String,
}

/// Expands `roots` into image files, and reports what could not be read.
pub fn collect_images(roots: &[PathBuf]) -> (Vec<PathBuf>, Vec<WalkError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for root in roots {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => walk(root, &mut files, &mut errors),
            Ok(_) => files.push(root.clone()),
            Err(e) => errors.push(WalkError {
                path: root.clone(),
                reason: e.to_string(),
            }),
        }
    }
    (files, errors)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<WalkError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(WalkError {
                path: dir.to_owned(),
                reason: e.to_string(),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if is_hidden(&path) {
            continue;
        }
        // symlink_metadata: a symlinked directory is not followed, so loops are impossible.
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, files, errors),
            Ok(m) if m.is_symlink() => {
                if std::fs::metadata(&path).is_ok_and(|t| t.is_file()) && has_image_extension(&path)
                {
                    files.push(path);
                }
            }
            Ok(_) if has_image_extension(&path) => files.push(path),
            Ok(_) => {}
            Err(e) => errors.push(WalkError {
                path,
                reason: e.to_string(),
            }),
        }
    }
}
