//! Reading an image file's bytes: regular files only, never more than a limit.
//!
//! - **Regular files only.** A device, FIFO, socket or directory named as an image is
//!   refused with what it is ("is a FIFO, not a regular file"), never read: reading
//!   `/dev/zero` would not end, and opening a FIFO blocks until a writer comes. The type is
//!   checked on the path first (following symlinks, so a link to `/dev/zero` is named as
//!   the device it leads to), then the file is opened without blocking (`O_NONBLOCK` on
//!   Unix: opening a FIFO for reading returns at once) and the type checked again on the
//!   open handle, so a file swapped for a FIFO between the two is refused too.
//! - **Bounded.** The read stops at the limit plus one byte, whatever the size the file
//!   system reports (0 for many special files, stale for a file being written): a file
//!   longer than the limit is refused without reading the rest.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// Why a file's bytes could not be read (the message names no path; the caller does).
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file does not exist, cannot be opened, or reading it failed.
    Io(std::io::Error),
    /// The path is not a regular file: what it is instead.
    NotRegular(&'static str),
    /// The file holds more than `limit` bytes (`size` as known: at least `limit + 1`).
    TooLong { limit: u64 },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => write!(f, "is {what}, not a regular file"),
            ReadError::TooLong { limit } => {
                write!(f, "the file is larger than {limit} bytes")
            }
        }
    }
}

/// What a file that is not a regular file is, in words ("a FIFO", "a directory", ...);
/// `None` for a regular file.
pub(crate) fn special_kind(meta: &Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_char_device() {
            return Some("a character device");
        }
        if kind.is_block_device() {
            return Some("a block device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("a special file")
}

/// Opens `path` for reading without blocking on FIFOs and devices.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Reads the whole regular file at `path`, refusing anything else and anything longer
/// than `limit` bytes (see the module documentation).
pub(crate) fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if let Some(what) = special_kind(&meta) {
        return Err(ReadError::NotRegular(what));
    }
    let file = open_nonblocking(path).map_err(ReadError::Io)?;
    // The path may have been replaced between the check and the open: check what was
    // opened.
    let meta = file.metadata().map_err(ReadError::Io)?;
    if let Some(what) = special_kind(&meta) {
        return Err(ReadError::NotRegular(what));
    }
    read_bounded(file, meta.len(), limit)
}

/// Reads `reader` to its end, but never more than `limit + 1` bytes: more than `limit`
/// is an error. `size_hint` (the size the file system reports) only sizes the buffer.
pub(crate) fn read_bounded(
    reader: impl Read,
    size_hint: u64,
    limit: u64,
) -> Result<Vec<u8>, ReadError> {
    if size_hint > limit {
        return Err(ReadError::TooLong { limit });
    }
    let mut data = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(ReadError::Io)?;
    if data.len() as u64 > limit {
        return Err(ReadError::TooLong { limit });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// Runs `f` on a thread and fails (instead of hanging) if it takes over 10 s.
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the read blocked for 10 s")
    }

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, [7u8; 100]).unwrap();
        assert_eq!(read_regular_file(&path, 100).unwrap(), vec![7u8; 100]);
        assert!(matches!(
            read_regular_file(&path, 99),
            Err(ReadError::TooLong { limit: 99 })
        ));
        let missing = dir.path().join("missing.bin");
        assert!(matches!(
            read_regular_file(&missing, 100),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
        let err = read_regular_file(dir.path(), 100).unwrap_err();
        assert_eq!(err.to_string(), "is a directory, not a regular file");
    }

    #[test]
    fn the_cap_holds_while_reading_not_only_by_the_reported_size() {
        // A reader longer than its reported size (a file that grows, a device that
        // reports 0): the read stops at limit + 1 bytes and fails.
        let endless = std::io::repeat(1);
        let err = read_bounded(endless, 0, 1000).unwrap_err();
        assert!(matches!(err, ReadError::TooLong { limit: 1000 }), "{err}");
        // A file that grows after its size was taken.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.bin");
        std::fs::write(&path, [0u8; 10]).unwrap();
        let file = File::open(&path).unwrap();
        let reported = file.metadata().unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[0u8; 100])
            .unwrap();
        assert!(matches!(
            read_bounded(file, reported, 50),
            Err(ReadError::TooLong { limit: 50 })
        ));
        // Exactly the limit is fine.
        assert_eq!(read_bounded(&[1u8; 50][..], 0, 50).unwrap().len(), 50);
    }

    #[cfg(unix)]
    #[test]
    fn dev_zero_is_refused_without_reading() {
        let err = within_10s(|| read_regular_file(Path::new("/dev/zero"), 1 << 40).unwrap_err());
        assert_eq!(err.to_string(), "is a character device, not a regular file");
        // Through a symlink: named as what it leads to, not as missing.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.jpg");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = within_10s(move || read_regular_file(&link, 1 << 40).unwrap_err());
        assert!(
            matches!(err, ReadError::NotRegular("a character device")),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.png");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let path = fifo.clone();
        let err = within_10s(move || read_regular_file(&path, 1 << 20).unwrap_err());
        assert_eq!(
            err.to_string(),
            "is a FIFO (named pipe), not a regular file"
        );
        // The open itself does not block either (the check after opening is the one that
        // matters when the path is swapped after the first check).
        let file = within_10s(move || open_nonblocking(&fifo).map(|f| f.metadata()));
        assert!(special_kind(&file.unwrap().unwrap()).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn a_socket_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock.jpg");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = within_10s(move || read_regular_file(&path, 1 << 20).unwrap_err());
        assert_eq!(err.to_string(), "is a socket, not a regular file");
    }
}
