//! Remembers which graph files have already been checked against their sha256, so that a
//! package opens fast the second time.
//!
//! Hashing the graphs of a ViT-B/32 package (600 MB) takes about 0.25 s of two cores,
//! a quarter of the one-second start-up budget (docs/design.md). After a file has been hashed
//! and found right, an entry records the file's identity: device, inode, size,
//! modification time and, above all, *change* time (`ctime`). The kernel sets `ctime` on
//! every write and metadata change and user programs cannot set it back, so a file whose
//! identity still matches has not been touched since it was verified. Any difference,
//! or a missing or unreadable entry, means the file is hashed again.
//!
//! Entries live in one small file per graph under the cache directory (by default
//! `$VTDE_CACHE_DIR`, else `$XDG_CACHE_HOME/vtde`, else `~/.cache/vtde`), named by a hash
//! of the graph's canonical path and the sha256 the manifest expects. The cache is only
//! an optimisation: every failure to read or write it falls back to hashing, silently.
//! On platforms without `ctime` (Windows) nothing is cached.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The default cache directory, if the environment names one.
pub fn default_dir() -> Option<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env("VTDE_CACHE_DIR")
        .or_else(|| from_env("XDG_CACHE_HOME").map(|d| d.join("vtde")))
        .or_else(|| from_env("HOME").map(|d| d.join(".cache").join("vtde")))
}

/// Version tag of an entry's format.
const ENTRY_VERSION: &str = "vtde-verified-1";

/// Whether `path` was verified to have the sha256 `expected` and has not changed since.
pub fn is_verified(cache_dir: &Path, path: &Path, expected: &str) -> bool {
    let (Some(entry), Some(identity)) = (entry_path(cache_dir, path, expected), identity(path))
    else {
        return false;
    };
    match std::fs::read_to_string(entry) {
        Ok(text) => text.trim_end() == format!("{ENTRY_VERSION} {expected} {identity}"),
        Err(_) => false,
    }
}

/// Records that `path` has just been hashed and had the sha256 `expected`.
///
/// The identity is read *before* the caller hashes (`identity_before`), so that a write
/// racing with the hashing changes `ctime` and the entry no longer matches.
pub fn record_verified(cache_dir: &Path, path: &Path, expected: &str, identity_before: &str) {
    let (Some(entry), Some(now)) = (entry_path(cache_dir, path, expected), identity(path)) else {
        return;
    };
    if now != identity_before {
        return;
    }
    let Some(parent) = entry.parent() else {
        return;
    };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    // Written to a temporary file and renamed, so that a reader never sees half an entry.
    let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
    let text = format!("{ENTRY_VERSION} {expected} {now}\n");
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &entry).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The file identity an entry records, or `None` where it cannot be read or the platform
/// has no change time.
pub fn identity(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(format!(
            "dev={} ino={} size={} mtime={}.{} ctime={}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn entry_path(cache_dir: &Path, path: &Path, expected: &str) -> Option<PathBuf> {
    let canonical = std::fs::canonicalize(path).ok()?;
    let mut hasher = Sha256::new();
    hasher.update(canonical.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(expected.as_bytes());
    let key = hex::encode(hasher.finalize());
    Some(cache_dir.join("verified").join(&key[..40]))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    const SHA: &str = "ab";

    #[test]
    fn records_and_recognises_an_unchanged_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("g.onnx");
        std::fs::write(&file, b"graph").expect("write");
        let cache = dir.path().join("cache");
        assert!(!is_verified(&cache, &file, SHA));
        let before = identity(&file).expect("identity");
        record_verified(&cache, &file, SHA, &before);
        assert!(is_verified(&cache, &file, SHA));
        // An entry is bound to the expected sha256: another manifest is not trusted.
        assert!(!is_verified(&cache, &file, "cd"));
    }

    #[test]
    fn a_rewrite_with_the_same_size_and_mtime_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("g.onnx");
        std::fs::write(&file, b"graph").expect("write");
        let cache = dir.path().join("cache");
        let before = identity(&file).expect("identity");
        record_verified(&cache, &file, SHA, &before);
        let mtime = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .expect("mtime");
        // Sleep past coarse timestamp granularity, so that ctime moves.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, b"GRAPH").expect("rewrite");
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(mtime))
            .expect("restore mtime");
        assert!(!is_verified(&cache, &file, SHA));
    }

    #[test]
    fn a_change_during_hashing_leaves_no_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("g.onnx");
        std::fs::write(&file, b"graph").expect("write");
        let cache = dir.path().join("cache");
        let before = identity(&file).expect("identity");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, b"graph, changed").expect("rewrite");
        record_verified(&cache, &file, SHA, &before);
        assert!(!is_verified(&cache, &file, SHA));
    }

    #[test]
    fn an_unwritable_cache_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("g.onnx");
        std::fs::write(&file, b"graph").expect("write");
        // The "cache directory" is a file: nothing can be created under it.
        let before = identity(&file).expect("identity");
        record_verified(&file, &file, SHA, &before);
        assert!(!is_verified(&file, &file, SHA));
    }
}
