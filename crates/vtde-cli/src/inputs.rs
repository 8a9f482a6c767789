//! Which image files a run reads, and how: turning the paths on the command line into a
//! deterministic list of inputs, splitting that list into shards, and the image reading
//! options ([`ImageReading`]) recorded with the results.
//!
//! - Files named on the command line are always taken, whatever their extension.
//! - Directories are walked depth first, entries in byte order of their names, so the
//!   order of the files under one root is the order of their paths compared component by
//!   component ([`Path`]'s `Ord`). `vtde merge` relies on that to restore the order of an
//!   unsharded run ([`canonical_key`]).
//! - Hidden entries (names starting with `.`) are skipped unless asked for; a root is never
//!   hidden, since it was named.
//! - Symlinked files are taken. Symlinked directories are not followed by default; with
//!   `follow_links` each directory is visited once (by canonical path), so a link loop ends.
//! - Symbolic links that lead nowhere (dangling, or looping onto themselves) are inputs
//!   that fail at once, with the reason, whatever their name: they are reported, not
//!   passed over in silence.
//! - Entries with an image's extension that are not regular files (FIFOs, devices,
//!   sockets, or links to them) are taken like files: the runtime refuses them without
//!   reading them ("is a FIFO (named pipe), not a regular file"), so they are reported.
//!   So are such files named on the command line.
//! - A file reached twice (overlapping roots, links) is taken once, at its first place.
//! - What cannot be listed becomes an input that fails at once, so that it is reported in
//!   the errors file like a bad image, by exactly one shard, in walk order.
//!
//! Shards: a file's *key* is its path relative to the root it was found under, components
//! joined with `/` (for a root that is a file: its file name), as bytes (UTF-8; raw bytes
//! for non-UTF-8 names on Unix). Shard of a file = FNV-1a 64-bit hash of the key, mod N.
//! It does not depend on where the folder is mounted, on the machine, or on the Rust
//! version, so N machines can split a corpus without talking to each other.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use vtde_runtime::ImageOptions;

use crate::args::Shard;

/// Which directory entries a walk takes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// Lowercase extensions without the dot.
    pub extensions: Vec<String>,
    pub hidden: bool,
    pub follow_links: bool,
}

impl Selection {
    pub fn new(extensions: &[String], hidden: bool, follow_links: bool) -> Self {
        let extensions = extensions
            .iter()
            .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        Selection {
            extensions,
            hidden,
            follow_links,
        }
    }

    fn wants_file(&self, path: &Path) -> bool {
        path.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| self.extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
    }
}

/// How image files are read. Recorded in output markers, since it changes results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageReading {
    pub exif_orientation: bool,
    pub fast_jpeg: bool,
    pub max_pixels: u64,
}

impl Default for ImageReading {
    /// The runtime's defaults: pixels as stored, exact JPEG decoding, PIL's pixel limit.
    fn default() -> Self {
        let defaults = ImageOptions::default();
        ImageReading {
            exif_orientation: defaults.apply_exif_orientation,
            fast_jpeg: defaults.jpeg_dct_scaling,
            max_pixels: defaults.max_pixels,
        }
    }
}

impl ImageReading {
    /// The runtime's image options that read files this way.
    pub fn options(&self) -> ImageOptions {
        ImageOptions::default()
            .with_exif_orientation(self.exif_orientation)
            .with_jpeg_dct_scaling(self.fast_jpeg)
            .with_max_pixels(self.max_pixels)
    }
}

/// One input of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// The shard key: the path relative to its root (see the module documentation).
    pub key: Vec<u8>,
    /// Why the path could not be listed, when it could not: the input then fails at once.
    pub unlistable: Option<String>,
}

/// The runtime's streaming pipeline reads inputs; one that could not be listed fails at
/// once, in its place, with the reason.
impl vtde_runtime::ImageSource for Input {
    fn path(&self) -> &Path {
        &self.path
    }

    fn unavailable(&self) -> Option<&str> {
        self.unlistable.as_deref()
    }
}

/// Why an input failed, as outputs write it: without its path (outputs give that
/// separately).
pub fn failure_reason(e: &vtde_runtime::Error) -> String {
    use vtde_runtime::Error;
    match e {
        Error::ImageDecode { message, .. } => format!("cannot decode: {message}"),
        Error::ImagePreprocessFile { message, .. } => format!("cannot preprocess: {message}"),
        Error::ImageTooLarge {
            width,
            height,
            max_pixels,
            ..
        } => format!("{width}x{height} pixels is more than the limit of {max_pixels}"),
        Error::ImageUnavailable { message, .. } => message.clone(),
        Error::DecoderPanicked { .. } => "the image decoder panicked on this file".into(),
        other => other.to_string(),
    }
}

impl Input {
    /// The path as written in outputs: losslessly, escaped where it is not UTF-8
    /// ([`crate::formats::paths`]).
    pub fn display(&self) -> String {
        crate::formats::paths::encode(&self.path)
    }

    /// Whether shard `shard` handles this input.
    pub fn in_shard(&self, shard: Option<Shard>) -> bool {
        shard.is_none_or(|s| fnv1a64(&self.key) % s.count == s.index)
    }
}

/// FNV-1a, 64 bits: the documented, stable hash of `--shard`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The inputs of shard `shard` (all of them without one), in walk order.
pub fn select(roots: &[PathBuf], selection: &Selection, shard: Option<Shard>) -> Vec<Input> {
    collect_inputs(roots, selection)
        .into_iter()
        .filter(|i| i.in_shard(shard))
        .collect()
}

/// Expands `roots` into the inputs of a run, in a deterministic order.
pub fn collect_inputs(roots: &[PathBuf], selection: &Selection) -> Vec<Input> {
    let mut walker = Walker {
        selection,
        out: Vec::new(),
        seen_files: HashSet::new(),
        seen_dirs: HashSet::new(),
    };
    for root in roots {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => walker.walk(root),
            Ok(_) => {
                let key = root
                    .file_name()
                    .map_or_else(|| path_key(root), |n| n.as_encoded_bytes().to_vec());
                walker.push(root.clone(), key, None);
            }
            Err(e) => {
                let is_link = std::fs::symlink_metadata(root).is_ok_and(|m| m.is_symlink());
                let reason = if is_link {
                    broken_link_reason(root, &e)
                } else {
                    e.to_string()
                };
                walker.push(root.clone(), path_key(root), Some(reason));
            }
        }
    }
    walker.out
}

/// Why a symbolic link met in a walk leads nowhere, `e` being the error of following it.
fn broken_link_reason(link: &Path, e: &std::io::Error) -> String {
    let target = std::fs::read_link(link)
        .map(|t| t.display().to_string())
        .unwrap_or_else(|_| "?".into());
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("dangling symbolic link: its target {target} does not exist")
    } else if e.raw_os_error() == Some(ELOOP) {
        format!("symbolic link loop: {target} leads back to itself")
    } else {
        format!("symbolic link to {target} that cannot be followed: {e}")
    }
}

/// `ELOOP` ("too many levels of symbolic links"): 40 on Linux, 62 on macOS and the BSDs.
#[cfg(any(target_os = "linux", target_os = "android"))]
const ELOOP: i32 = 40;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const ELOOP: i32 = 62;

/// The key of `path` relative to nothing: its components joined with `/`.
fn path_key(path: &Path) -> Vec<u8> {
    let mut key = Vec::new();
    for c in path.components() {
        if let Component::Normal(name) = c {
            if !key.is_empty() {
                key.push(b'/');
            }
            key.extend_from_slice(name.as_encoded_bytes());
        }
    }
    key
}

struct Walker<'a> {
    selection: &'a Selection,
    out: Vec<Input>,
    seen_files: HashSet<PathBuf>,
    /// Canonical paths of the directories entered (only with `follow_links`).
    seen_dirs: HashSet<PathBuf>,
}

/// A directory being listed: its remaining entries, and its key prefix.
struct Frame {
    entries: std::vec::IntoIter<PathBuf>,
    key: Vec<u8>,
}

impl Walker<'_> {
    fn push(&mut self, path: PathBuf, key: Vec<u8>, unlistable: Option<String>) {
        if self.seen_files.insert(path.clone()) {
            self.out.push(Input {
                path,
                key,
                unlistable,
            });
        }
    }

    /// Lists a directory's entries, sorted; a failure becomes an unlistable input.
    fn list(&mut self, dir: &Path, key: &[u8]) -> Option<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.push(dir.to_owned(), key.to_vec(), Some(e.to_string()));
                return None;
            }
        };
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => paths.push(entry.path()),
                Err(e) => {
                    self.push(
                        dir.to_owned(),
                        key.to_vec(),
                        Some(format!("error listing the directory: {e}")),
                    );
                }
            }
        }
        paths.sort();
        Some(paths)
    }

    /// Enters a directory once: with `follow_links`, by its canonical path.
    fn first_visit(&mut self, dir: &Path) -> bool {
        if !self.selection.follow_links {
            return true;
        }
        match std::fs::canonicalize(dir) {
            Ok(canonical) => self.seen_dirs.insert(canonical),
            Err(_) => true,
        }
    }

    /// Depth first with an explicit stack: deep trees cannot overflow the thread's stack.
    fn walk(&mut self, root: &Path) {
        if !self.first_visit(root) {
            return;
        }
        let Some(entries) = self.list(root, b"") else {
            return;
        };
        let mut stack = vec![Frame {
            entries: entries.into_iter(),
            key: Vec::new(),
        }];
        while let Some(frame) = stack.last_mut() {
            let Some(path) = frame.entries.next() else {
                stack.pop();
                continue;
            };
            let Some(name) = path.file_name() else {
                continue;
            };
            let mut key = frame.key.clone();
            if !key.is_empty() {
                key.push(b'/');
            }
            key.extend_from_slice(name.as_encoded_bytes());
            if !self.selection.hidden && name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    self.push(path, key, Some(e.to_string()));
                    continue;
                }
            };
            let is_dir = if meta.is_symlink() {
                // The target decides. A link that leads nowhere (dangling, or a loop) is
                // reported: it may have been meant to be an image or a folder of them.
                match std::fs::metadata(&path) {
                    Ok(target) if target.is_dir() => {
                        if !self.selection.follow_links {
                            continue;
                        }
                        true
                    }
                    Ok(_) => false,
                    Err(e) => {
                        let reason = broken_link_reason(&path, &e);
                        self.push(path, key, Some(reason));
                        continue;
                    }
                }
            } else {
                meta.is_dir()
            };
            if is_dir {
                if self.first_visit(&path) {
                    if let Some(entries) = self.list(&path, &key) {
                        stack.push(Frame {
                            entries: entries.into_iter(),
                            key,
                        });
                    }
                }
            } else if self.selection.wants_file(&path) {
                // Regular files, and anything else with an image's name (a FIFO, a
                // device, a link to one): the runtime refuses those without reading
                // them, and the run reports them.
                self.push(path, key, None);
            }
        }
    }
}

/// The sort key that restores the order of an unsharded run from output paths: the
/// position of the first root the path lies under (roots as given on the command line),
/// then the path compared component by component. Paths under no root sort last.
pub fn canonical_key<'p, R, P>(roots: &[R], path: &'p P) -> (usize, &'p Path)
where
    R: AsRef<Path>,
    P: AsRef<Path> + ?Sized,
{
    let p = path.as_ref();
    let root = roots
        .iter()
        .position(|r| p.starts_with(r))
        .unwrap_or(roots.len());
    (root, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel() -> Selection {
        Selection::new(&["png".into(), "JPG".into()], false, false)
    }

    fn names(inputs: &[Input], root: &Path) -> Vec<String> {
        inputs
            .iter()
            .map(|i| {
                i.path
                    .strip_prefix(root)
                    .unwrap_or(&i.path)
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference (Fowler, Noll, Vo), test vectors for FNV-1a 64.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn walk_is_sorted_depth_first_and_filters() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        for p in [
            "b.png",
            "a/z.JPG",
            "a.png",
            "c.txt",
            ".h.png",
            ".hid/x.png",
            "a/y.png",
        ] {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, b"x").expect("write");
        }
        let inputs = collect_inputs(&[root.to_owned()], &sel());
        let got = names(&inputs, root);
        assert_eq!(got, ["a/y.png", "a/z.JPG", "a.png", "b.png"]);
        // The order is Path's component-wise order, which `vtde merge` sorts by.
        let mut sorted = inputs.clone();
        sorted.sort_by(|x, y| x.path.cmp(&y.path));
        assert_eq!(sorted, inputs);
        assert_eq!(inputs[1].key, b"a/z.JPG");

        let with_hidden = Selection::new(&["png".into()], true, false);
        let got = names(&collect_inputs(&[root.to_owned()], &with_hidden), root);
        assert_eq!(got, [".h.png", ".hid/x.png", "a/y.png", "a.png", "b.png"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_end() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("r");
        std::fs::create_dir_all(root.join("d")).expect("mkdir");
        std::fs::write(root.join("d/x.png"), b"x").expect("write");
        std::os::unix::fs::symlink(&root, root.join("d/loop")).expect("symlink");
        std::os::unix::fs::symlink(root.join("d"), root.join("e")).expect("symlink");
        let not_followed = collect_inputs(std::slice::from_ref(&root), &sel());
        assert_eq!(names(&not_followed, &root), ["d/x.png"]);
        let followed = Selection::new(&["png".into()], false, true);
        // `d` is reached directly and through `e`: visited once; the loop ends.
        let got = collect_inputs(std::slice::from_ref(&root), &followed);
        assert_eq!(names(&got, &root), ["d/x.png"]);
    }

    #[cfg(unix)]
    #[test]
    fn links_that_lead_nowhere_are_reported_and_special_files_taken() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("r");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::write(root.join("a.png"), b"x").expect("write");
        std::os::unix::fs::symlink("nowhere.png", root.join("b_dangling.png")).expect("link");
        std::os::unix::fs::symlink("c_loop2", root.join("c_loop1")).expect("link");
        std::os::unix::fs::symlink("c_loop1", root.join("c_loop2")).expect("link");
        std::os::unix::fs::symlink("/dev/null", root.join("d_null.png")).expect("link");
        std::os::unix::fs::symlink("/dev/null", root.join("e_null.txt")).expect("link");
        let inputs = collect_inputs(std::slice::from_ref(&root), &sel());
        assert_eq!(
            names(&inputs, &root),
            [
                "a.png",
                "b_dangling.png",
                "c_loop1",
                "c_loop2",
                "d_null.png"
            ]
        );
        assert_eq!(inputs[0].unlistable, None);
        let reason = |i: usize| inputs[i].unlistable.clone().unwrap_or_default();
        assert_eq!(
            reason(1),
            "dangling symbolic link: its target nowhere.png does not exist"
        );
        assert_eq!(
            reason(2),
            "symbolic link loop: c_loop2 leads back to itself"
        );
        // A device with an image's name is taken: the runtime refuses it unread.
        assert_eq!(inputs[4].unlistable, None);
        // Named on the command line, a dangling link says so too.
        let named = collect_inputs(&[root.join("b_dangling.png")], &sel());
        assert_eq!(
            named[0].unlistable.as_deref(),
            Some("dangling symbolic link: its target nowhere.png does not exist")
        );
    }

    #[test]
    fn missing_roots_and_named_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = tmp.path().join("notes.txt");
        std::fs::write(&file, b"x").expect("write");
        let missing = tmp.path().join("nope");
        let inputs = collect_inputs(&[file.clone(), missing.clone(), file.clone()], &sel());
        assert_eq!(inputs.len(), 2, "a file named twice is taken once");
        assert_eq!(inputs[0].path, file);
        assert_eq!(inputs[0].key, b"notes.txt");
        assert!(inputs[0].unlistable.is_none());
        assert_eq!(inputs[1].path, missing);
        assert!(inputs[1].unlistable.is_some());
    }

    #[test]
    fn shards_partition_the_inputs() {
        let inputs: Vec<Input> = (0..200)
            .map(|i| Input {
                path: PathBuf::from(format!("/x/{i}.png")),
                key: format!("{i}.png").into_bytes(),
                unlistable: None,
            })
            .collect();
        let count = 3;
        let mut seen = vec![0; inputs.len()];
        for index in 0..count {
            let shard = Some(Shard { index, count });
            for (i, input) in inputs.iter().enumerate() {
                if input.in_shard(shard) {
                    seen[i] += 1;
                }
            }
        }
        assert!(
            seen.iter().all(|&n| n == 1),
            "each input in exactly one shard"
        );
        assert!(inputs.iter().all(|i| i.in_shard(None)));
    }

    #[test]
    fn canonical_order_follows_roots_then_paths() {
        let roots = vec!["b".to_string(), "a/".to_string()];
        let mut paths = vec![
            "a/y.png",
            "b/z.png",
            "a/x/1.png",
            "b/a.png",
            "elsewhere.png",
        ];
        paths.sort_by(|x, y| canonical_key(&roots, x).cmp(&canonical_key(&roots, y)));
        assert_eq!(
            paths,
            [
                "b/a.png",
                "b/z.png",
                "a/x/1.png",
                "a/y.png",
                "elsewhere.png"
            ]
        );
    }
}
