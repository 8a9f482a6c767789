//! Outputs that belong to one run, and that are never inputs.
//!
//! **Locks.** A run holds an exclusive advisory lock (`flock`, through
//! [`std::fs::File::try_lock`]) on each output it writes, for its whole life: the results
//! file itself and its errors file (`vtde score`, `vtde merge`), `DIR/embeddings.npy` for
//! an embeddings directory (which stands for the whole directory, marker included), the
//! `-o` file of `vtde search`. The lock is taken before anything is written or cut, so a
//! second run that names the same output stops with an error naming it and changes
//! nothing. No separate lock file is left behind. `vtde merge` takes a shared lock on each
//! shard's locked file, so it does not read a shard while a run is writing it. A
//! filesystem that has no locks gets a warning, and the run goes on unlocked.
//!
//! **Identity.** [`Outputs`] collects the files a run writes and refuses any two that are
//! the same file, and any input that is one of them: an image, the labels or texts file,
//! a file of the package, a shard being merged. Files are the same when they have the same
//! device and inode (hard links, symbolic links, `./x` and `x` alike), or, for outputs
//! that do not exist yet, the same absolute path once the directories that exist are
//! resolved.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

/// Takes the exclusive lock of an output file opened for writing; `what` names it in
/// messages.
pub fn lock_exclusive(file: &File, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "{} is being written by another vtde run (it is locked); wait for that run, or \
             write elsewhere",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            unlockable(path, &e);
            Ok(())
        }
    }
}

/// Takes a shared lock on an input that a vtde run may be writing (a shard being merged):
/// refused while a run holds its exclusive lock. Returns the open file, which holds the
/// lock until dropped; `None` when the file does not exist.
pub fn lock_shared(path: &Path) -> Result<Option<File>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("opening {}: {e}", path.display()),
    };
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "{} is being written by a vtde run (it is locked); wait for that run to finish",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => unlockable(path, &e),
    }
    Ok(Some(file))
}

fn unlockable(path: &Path, e: &std::io::Error) {
    eprintln!(
        "vtde: warning: cannot lock {} ({e}); another run writing it at the same time would \
         not be noticed",
        path.display()
    );
}

/// Whether `path` names something other than a regular file or a directory (a device
/// such as `/dev/null`, a FIFO, a socket), following symbolic links. Missing: false.
pub fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// What a file is, to tell whether two paths are the same file.
#[derive(Debug, Clone)]
struct Identity {
    /// Device and inode, when the file exists.
    inode: Option<(u64, u64)>,
    /// Its absolute path, the existing directories resolved.
    path: PathBuf,
}

impl Identity {
    fn of(path: &Path) -> Self {
        Identity {
            inode: inode(path),
            path: absolute(path),
        }
    }

    fn same(&self, other: &Identity) -> bool {
        match (self.inode, other.inode) {
            (Some(a), Some(b)) => a == b,
            _ => self.path == other.path,
        }
    }
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// `path` made absolute: its longest part that exists resolved (links, `..`), the rest
/// appended (`..` in it taken lexically).
fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let parts: Vec<Component<'_>> = abs.components().collect();
    for n in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..n].iter().collect();
        if let Ok(mut resolved) = std::fs::canonicalize(&prefix) {
            for part in &parts[n..] {
                match part {
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    Component::Normal(name) => resolved.push(name),
                    _ => {}
                }
            }
            return resolved;
        }
    }
    abs
}

/// The outputs of a run, checked against each other and against its inputs.
#[derive(Debug, Default)]
pub struct Outputs {
    /// What each output is (as named in messages), its path and identity.
    files: Vec<(String, PathBuf, Identity)>,
}

impl Outputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an output, `what` naming it in messages ("the results file (-o)"); refused
    /// when it is the same file as an output added before.
    pub fn add(&mut self, what: &str, path: &Path) -> Result<()> {
        let id = Identity::of(path);
        if let Some((other, other_path, _)) = self.files.iter().find(|(_, _, o)| o.same(&id)) {
            bail!(
                "{what} {} and {other} {} are the same file: give them different paths",
                path.display(),
                other_path.display()
            );
        }
        self.files.push((what.to_owned(), path.to_owned(), id));
        Ok(())
    }

    /// Refuses an input (`what` names it: "the labels file") that is one of the outputs.
    pub fn input(&self, what: &str, path: &Path) -> Result<()> {
        let id = Identity::of(path);
        if let Some((out, out_path, _)) = self.files.iter().find(|(_, _, o)| o.same(&id)) {
            bail!(
                "{out} {} is {what} {}: vtde never writes over its inputs",
                out_path.display(),
                path.display()
            );
        }
        Ok(())
    }

    /// Refuses the package directory, or any file in it, as an output.
    pub fn package(&self, dir: &Path) -> Result<()> {
        self.input("the package directory", dir)?;
        let mut stack = vec![(dir.to_owned(), 0)];
        while let Some((d, depth)) = stack.pop() {
            // A package is a flat directory; a few levels cover any layout.
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_dir() && depth < 3 => stack.push((path, depth + 1)),
                    Ok(m) if m.is_file() => self.input("a file of the package", &path)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Refuses input files (the images of a run) that are outputs. Outputs that do not
    /// exist yet cannot be existing inputs, so files are looked at only when some output
    /// exists already (`--resume`, or a path used before).
    pub fn inputs<'a>(&self, what: &str, paths: impl IntoIterator<Item = &'a Path>) -> Result<()> {
        let existing: HashMap<(u64, u64), &(String, PathBuf, Identity)> = self
            .files
            .iter()
            .filter_map(|f| f.2.inode.map(|i| (i, f)))
            .collect();
        if existing.is_empty() {
            return Ok(());
        }
        for path in paths {
            if let Some((out, out_path, _)) = inode(path).and_then(|i| existing.get(&i)) {
                bail!(
                    "{out} {} is {what} {}: vtde never writes over its inputs",
                    out_path.display(),
                    path.display()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_under_other_names_is_found() {
        let tmp = tempfile::tempdir().expect("tmp");
        let a = tmp.path().join("a.csv");
        std::fs::write(&a, b"x").expect("write");
        let mut outputs = Outputs::new();
        outputs.add("the results file", &a).expect("first output");
        // The same file through `..`, a hard link, a symbolic link.
        let sub = tmp.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        assert!(outputs.input("an image", &sub.join("../a.csv")).is_err());
        let hard = tmp.path().join("hard.csv");
        std::fs::hard_link(&a, &hard).expect("link");
        assert!(outputs.input("an image", &hard).is_err());
        assert!(outputs.inputs("an image", [hard.as_path()]).is_err());
        #[cfg(unix)]
        {
            let soft = tmp.path().join("soft.csv");
            std::os::unix::fs::symlink(&a, &soft).expect("symlink");
            assert!(outputs.add("the errors file", &soft).is_err());
        }
        // Another file is no conflict.
        let b = tmp.path().join("b.csv");
        std::fs::write(&b, b"x").expect("write");
        outputs.input("an image", &b).expect("another file");
        outputs
            .inputs("an image", [b.as_path()])
            .expect("another file");
    }

    #[test]
    fn outputs_that_do_not_exist_yet_compare_by_path() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut outputs = Outputs::new();
        let x = tmp.path().join("new/x.csv");
        outputs.add("the results file", &x).expect("first");
        let err = outputs
            .add("the errors file", &tmp.path().join("new/../new/x.csv"))
            .expect_err("same path");
        assert!(err.to_string().contains("the same file"), "{err}");
        outputs
            .add("the errors file", &tmp.path().join("new/y.csv"))
            .expect("other path");
    }

    #[test]
    fn package_files_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let pkg = tmp.path().join("pkg");
        std::fs::create_dir(&pkg).expect("mkdir");
        std::fs::write(pkg.join("vtde.json"), b"{}").expect("write");
        let mut outputs = Outputs::new();
        outputs
            .add("the results file", &pkg.join("new.csv"))
            .expect("add");
        outputs
            .package(&pkg)
            .expect("a new file in the package is none of its files");
        outputs
            .add("the errors file", &pkg.join("vtde.json"))
            .expect("add");
        let err = outputs.package(&pkg).expect_err("vtde.json");
        assert!(err.to_string().contains("vtde.json"), "{err}");
    }

    #[test]
    fn a_second_lock_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("out.csv");
        let first = File::create(&path).expect("create");
        lock_exclusive(&first, &path).expect("first lock");
        let second = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        let err = lock_exclusive(&second, &path).expect_err("locked");
        assert!(err.to_string().contains("another vtde run"), "{err}");
        assert!(lock_shared(&path).is_err());
        drop(first);
        lock_exclusive(&second, &path).expect("free again");
    }
}
