//! Crash-safe outputs: append-only files and an atomically replaced commit marker.
//!
//! A run appends each batch's records to its output files, makes them durable
//! (`fsync`), and then replaces its marker (write a temporary file, `fsync`, rename), which
//! records how many bytes (and rows) of each file are committed. Whenever the process is
//! killed, the marker is the old or the new one, never a mix, and the files hold at least
//! what it says. `--resume` cuts each file back to its committed length, reads the
//! complete records in it (so a half-written last line is dropped even if the marker is
//! missing or older), and goes on after them.
//!
//! The marker also records the settings of the run ([`RunInfo`]), so that a resume or a
//! merge refuses outputs made with other labels, another model or other inputs.
//!
//! A run locks its output files before it changes anything ([`super::exclusive`]), and
//! replaces the marker with one that commits nothing it is about to cut (and says
//! `complete: false`) before it cuts any file. The temporary file of a marker is named
//! for the process (`meta.json.PID.N.tmp`), removed when writing it fails, and stale
//! ones of killed runs are removed by the next run that holds the lock.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::args::Shard;

/// The package's identity for output markers: its directory (absolute when it can be
/// resolved) and the sha256 of its `vtde.json`, which holds every graph's sha256.
pub fn package_identity(package: &Path) -> Result<(String, String)> {
    let dir = std::fs::canonicalize(package).unwrap_or_else(|_| package.to_owned());
    let sha = vtde_runtime::vtde_package::sha256_file(&package.join("vtde.json"))
        .with_context(|| format!("hashing {}", package.join("vtde.json").display()))?;
    Ok((super::paths::encode(&dir), sha))
}

/// Version of the marker format.
pub const MARKER_VERSION: u32 = 1;

/// What produced an output, compared on resume and merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `score`, `embed` or `embed-text`.
    pub command: String,
    /// The package directory, as an absolute path when it could be resolved (written as
    /// [`super::paths`] says).
    pub package: String,
    /// sha256 of the package's `vtde.json` (which holds every graph's sha256).
    pub package_sha256: String,
    /// Command-specific settings that shape the results (labels, templates, format,
    /// precision, file selection, embedding width...).
    pub settings: serde_json::Value,
    /// The PATHS arguments, as given (the order of results follows them), written as
    /// [`super::paths`] says.
    pub roots: Vec<String>,
    pub shard: Option<Shard>,
}

impl RunInfo {
    /// The run of `command` with `package` (identified by [`package_identity`]),
    /// `settings` (recorded as JSON), the PATHS arguments `roots` and `shard`.
    pub fn new(
        command: &str,
        package: &Path,
        settings: &impl Serialize,
        roots: Vec<String>,
        shard: Option<Shard>,
    ) -> Result<Self> {
        let (package, package_sha256) = package_identity(package)?;
        Ok(RunInfo {
            command: command.into(),
            package,
            package_sha256,
            settings: serde_json::to_value(settings).context("serializing the settings")?,
            roots,
            shard,
        })
    }

    /// Why outputs of `self` and `other` cannot be combined, if they cannot. The package
    /// path may differ (a package copied elsewhere is the same package), and so may the
    /// shard when `ignore_shard` is set (merge).
    pub fn mismatch(&self, other: &RunInfo, ignore_shard: bool) -> Option<String> {
        if self.command != other.command {
            return Some(format!(
                "made by `vtde {}`, not `vtde {}`",
                other.command, self.command
            ));
        }
        if self.package_sha256 != other.package_sha256 {
            return Some(format!(
                "made with another package ({}, vtde.json sha256 {})",
                other.package, other.package_sha256
            ));
        }
        if self.settings != other.settings {
            // Name the settings that differ rather than dumping both.
            let differing: Vec<String> = match (&self.settings, &other.settings) {
                (serde_json::Value::Object(a), serde_json::Value::Object(b)) => a
                    .keys()
                    .chain(b.keys().filter(|k| !a.contains_key(*k)))
                    .filter(|k| a.get(*k) != b.get(*k))
                    .map(|k| {
                        let show = |v: Option<&serde_json::Value>| {
                            v.map_or_else(|| "nothing".into(), |v| v.to_string())
                        };
                        format!("{k} {} instead of {}", show(b.get(k)), show(a.get(k)))
                    })
                    .collect(),
                _ => vec![format!("{} instead of {}", other.settings, self.settings)],
            };
            return Some(format!(
                "made with other settings: {}",
                differing.join("; ")
            ));
        }
        if self.roots != other.roots {
            return Some(format!(
                "made from other paths: {:?} instead of {:?}",
                other.roots, self.roots
            ));
        }
        if !ignore_shard && self.shard != other.shard {
            let show = |s: Option<Shard>| s.map_or_else(|| "no shard".into(), |s| s.to_string());
            return Some(format!(
                "made for {} instead of {}",
                show(other.shard),
                show(self.shard)
            ));
        }
        None
    }
}

/// How much of each output file is committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Bytes of the results file (score), or of `index.jsonl` (embeddings).
    pub output_bytes: u64,
    /// Bytes of the errors file.
    pub errors_bytes: u64,
    /// Rows of `embeddings.npy` (embeddings; 0 for score).
    pub rows: u64,
    /// Items written, and items that failed (informative; the files are the truth).
    pub done: u64,
    pub failed: u64,
}

/// The commit marker: `FILE.progress.json` beside a score results file, `meta.json` in
/// an embeddings directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// `vtde-progress` or `vtde-embeddings`.
    pub kind: String,
    pub version: u32,
    pub run: RunInfo,
    pub commit: Commit,
    /// Whether the run went through all its inputs.
    pub complete: bool,
}

impl Marker {
    /// Reads a marker; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<Marker>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let marker: Marker = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a vtde progress marker", path.display()))?;
        if marker.version > MARKER_VERSION {
            bail!(
                "{} has marker version {}; this vtde reads up to {MARKER_VERSION}",
                path.display(),
                marker.version
            );
        }
        Ok(Some(marker))
    }

    /// Replaces the marker atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(self).context("serializing the marker")?;
        json.push(b'\n');
        write_atomic(path, &json)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that `path` is
/// always either the old or the new content. The temporary file is named for this
/// process, and removed when the write fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("writing {}", path.display()))
    })
}

/// The marker of the earlier run that wrote `output`, when resuming it: `None` without
/// `--resume` or without a marker. An earlier run with other settings is an error: its
/// rows cannot be continued. Temporary markers a killed run left are removed first.
pub fn resumable_run(
    marker_path: &Path,
    resume: bool,
    run: &RunInfo,
    output: &Path,
) -> Result<Option<Marker>> {
    remove_stale_temporaries(marker_path);
    if !resume {
        return Ok(None);
    }
    let Some(marker) = Marker::read(marker_path)? else {
        return Ok(None);
    };
    if let Some(why) = run.mismatch(&marker.run, false) {
        bail!(
            "cannot resume {}: it was {why}; run without --resume to start over",
            output.display()
        );
    }
    Ok(Some(marker))
}

/// Removes the temporary files that killed runs left beside `path` (`path.PID.N.tmp`,
/// and `path.tmp` of older versions). Only for a run that holds the output's lock.
pub fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let name = name.as_encoded_bytes();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let stale = file_name
            .as_encoded_bytes()
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(b"."))
            .and_then(|rest| rest.strip_suffix(b"tmp"))
            .is_some_and(|middle| {
                // `PID.N.` or nothing.
                middle.is_empty()
                    || (middle.ends_with(b".")
                        && middle[..middle.len() - 1]
                            .split(|&b| b == b'.')
                            .map(|part| !part.is_empty() && part.iter().all(u8::is_ascii_digit))
                            .eq([true, true]))
            });
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Reads at most `limit` bytes of a file (all of a missing file: none).
pub fn read_prefix(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// An output file that only grows, written in batches. A regular file is locked for as
/// long as this lives; a device or FIFO (`-o /dev/null`) is written as a stream: no lock,
/// no cutting, nothing to make durable.
#[derive(Debug)]
pub struct AppendFile {
    file: File,
    path: PathBuf,
    len: u64,
    buf: Vec<u8>,
    regular: bool,
}

impl AppendFile {
    /// Opens (creating) an output file and takes its lock, changing nothing in it: the
    /// caller [cuts](Self::cut) it once the marker commits nothing beyond the cut.
    pub fn open(path: &Path) -> Result<Self> {
        let ctx = || format!("opening {}", path.display());
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(ctx)?;
        let meta = file.metadata().with_context(ctx)?;
        let regular = meta.is_file();
        if regular {
            super::exclusive::lock_exclusive(&file, path)?;
        }
        Ok(AppendFile {
            file,
            path: path.to_owned(),
            len: if regular { meta.len() } else { 0 },
            buf: Vec::new(),
            regular,
        })
    }

    /// Keeps the first `keep` bytes (all when there are fewer), and appends after them.
    pub fn cut(&mut self, keep: u64) -> Result<()> {
        self.buf.clear();
        if !self.regular {
            return Ok(());
        }
        let keep = keep.min(self.len);
        let cut = |f: &mut File| -> std::io::Result<()> {
            f.set_len(keep)?;
            f.seek(SeekFrom::Start(keep))?;
            Ok(())
        };
        cut(&mut self.file).with_context(|| format!("writing {}", self.path.display()))?;
        self.len = keep;
        Ok(())
    }

    /// Queues text to write at the next [`flush`](Self::flush).
    pub fn push(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Queues bytes to write at the next [`flush`](Self::flush).
    pub fn push_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Writes what was queued; returns the file's length (the bytes written, for a
    /// stream). What could not be written is dropped, and the length stays that of what
    /// was.
    pub fn flush(&mut self) -> Result<u64> {
        if !self.buf.is_empty() {
            let written = self.file.write_all(&self.buf);
            let queued = std::mem::take(&mut self.buf);
            if let Err(e) = written {
                // A part may have been written: go back to the end of what was.
                if self.regular {
                    let len = self.len;
                    let _ = self
                        .file
                        .set_len(len)
                        .and_then(|()| self.file.seek(SeekFrom::Start(len)));
                }
                return Err(e).with_context(|| format!("writing {}", self.path.display()));
            }
            self.len += queued.len() as u64;
        }
        Ok(self.len)
    }

    /// Makes what was written durable (regular files).
    pub fn sync(&self) -> Result<()> {
        if !self.regular {
            return Ok(());
        }
        self.file
            .sync_data()
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a regular file (not a device or FIFO).
    pub fn is_regular(&self) -> bool {
        self.regular
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_file_keeps_the_committed_prefix() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("out.csv");
        let mut f = AppendFile::open(&path).expect("open");
        f.cut(0).expect("cut");
        f.push("one\n");
        assert_eq!(f.flush().expect("flush"), 4);
        f.push("two\n");
        f.flush().expect("flush");
        drop(f);
        let mut f = AppendFile::open(&path).expect("reopen");
        f.cut(4).expect("cut");
        f.push("three\n");
        f.flush().expect("flush");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "one\nthree\n"
        );
        // Keeping more than there is keeps all.
        drop(f);
        let mut f = AppendFile::open(&path).expect("reopen");
        f.cut(1000).expect("cut");
        assert_eq!(f.len, 10);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn failed_atomic_writes_leave_no_temporary_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        // A rename over a directory that holds a file fails.
        let target = tmp.path().join("meta.json");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::write(target.join("x"), b"x").expect("write");
        assert!(write_atomic(&target, b"{}").is_err());
        assert_eq!(names(tmp.path()), ["meta.json"]);
        // And a write that works leaves none either.
        let ok = tmp.path().join("ok.json");
        write_atomic(&ok, b"{}").expect("write");
        assert_eq!(names(tmp.path()), ["meta.json", "ok.json"]);
    }

    #[test]
    fn stale_temporaries_of_the_marker_are_removed() {
        let tmp = tempfile::tempdir().expect("tmp");
        for n in [
            "meta.json",
            "meta.json.123.0.tmp",
            "meta.json.tmp",
            "meta.json.x.0.tmp",
            "meta.json.1.tmp",
            "other.json.123.0.tmp",
        ] {
            std::fs::write(tmp.path().join(n), b"x").expect("write");
        }
        remove_stale_temporaries(&tmp.path().join("meta.json"));
        assert_eq!(
            names(tmp.path()),
            [
                "meta.json",
                "meta.json.1.tmp",
                "meta.json.x.0.tmp",
                "other.json.123.0.tmp"
            ]
        );
    }

    #[test]
    fn markers_round_trip_and_compare() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("m.json");
        assert!(Marker::read(&path).expect("read").is_none());
        let run = RunInfo {
            command: "score".into(),
            package: "/p".into(),
            package_sha256: "abc".into(),
            settings: serde_json::json!({"labels": ["a"]}),
            roots: vec!["photos".into()],
            shard: Some(Shard { index: 1, count: 4 }),
        };
        let marker = Marker {
            kind: "vtde-progress".into(),
            version: MARKER_VERSION,
            run: run.clone(),
            commit: Commit {
                output_bytes: 10,
                ..Commit::default()
            },
            complete: false,
        };
        marker.write(&path).expect("write");
        assert_eq!(Marker::read(&path).expect("read"), Some(marker));

        let moved = RunInfo {
            package: "/elsewhere".into(),
            ..run.clone()
        };
        assert_eq!(run.mismatch(&moved, false), None);
        let other_shard = RunInfo {
            shard: Some(Shard { index: 2, count: 4 }),
            ..run.clone()
        };
        assert!(run.mismatch(&other_shard, false).is_some());
        assert_eq!(run.mismatch(&other_shard, true), None);
        let other_labels = RunInfo {
            settings: serde_json::json!({"labels": ["b"]}),
            ..run.clone()
        };
        assert!(run.mismatch(&other_labels, true).is_some());
    }
}
