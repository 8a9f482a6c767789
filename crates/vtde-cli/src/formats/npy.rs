//! `.npy` files of float32 rows, written so that a killed run leaves a loadable file.
//!
//! The format (numpy's `NEP 1`): the magic `\x93NUMPY`, version 1.0, a little-endian u16
//! header length, a Python dict literal `{'descr': '<f4', 'fortran_order': False,
//! 'shape': (rows, cols), }` padded with spaces to a 64-byte boundary and ended by `\n`,
//! then the rows, C order, little-endian. vtde always writes a 128-byte header, so that
//! the row count can be rewritten in place: rows are appended and made durable first,
//! then the header is rewritten with the new count (one small write in the first disk
//! sector). At any moment the file loads with `numpy.load` and holds the rows its header
//! counts; bytes of rows not yet counted may follow, and `--resume` cuts them off.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use vtde_runtime::ndarray::ArrayView2;

/// Length of the header vtde writes.
pub const HEADER_LEN: u64 = 128;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The fixed-size header for `rows × cols` float32 values.
pub fn header(rows: u64, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut out = Vec::with_capacity(HEADER_LEN as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    let text_len = HEADER_LEN as usize - out.len() - 2;
    out.extend_from_slice(&(text_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    // A u64 row count and any realistic width fit in the 118 bytes: pad with spaces.
    out.resize(HEADER_LEN as usize - 1, b' ');
    out.push(b'\n');
    out
}

/// What the header of a float32 `.npy` file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpyInfo {
    pub data_offset: u64,
    pub rows: u64,
    pub cols: usize,
}

/// Reads and checks the header: 2-D, `<f4`, C order (versions 1.0 to 3.0).
pub fn read_header(file: &mut impl Read) -> Result<NpyInfo> {
    let mut fixed = [0u8; 8];
    file.read_exact(&mut fixed).context("no .npy header")?;
    if &fixed[..6] != MAGIC {
        bail!("not a .npy file");
    }
    let (len, prefix) = match fixed[6] {
        1 => {
            let mut b = [0u8; 2];
            file.read_exact(&mut b).context("truncated .npy header")?;
            (u64::from(u16::from_le_bytes(b)), 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            file.read_exact(&mut b).context("truncated .npy header")?;
            (u64::from(u32::from_le_bytes(b)), 12)
        }
        v => bail!(".npy version {v} is not supported"),
    };
    if len > 1 << 20 {
        bail!(".npy header of {len} bytes is implausible");
    }
    let mut text = vec![0u8; len as usize];
    file.read_exact(&mut text)
        .context("truncated .npy header")?;
    let text = String::from_utf8_lossy(&text);
    let value = |key: &str| -> Option<&str> {
        let at = text.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = value("descr").context(".npy header without descr")?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
        bail!(".npy data is not little-endian float32 ({descr:.10})");
    }
    let fortran = value("fortran_order").context(".npy header without fortran_order")?;
    if !fortran.starts_with("False") {
        bail!(".npy data is in Fortran order");
    }
    let shape = value("shape").context(".npy header without shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(inner, _)| inner)
        .context("bad .npy shape")?;
    let dims: Vec<u64> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<u64>())
        .collect::<std::result::Result<_, _>>()
        .context("bad .npy shape")?;
    let [rows, cols] = dims[..] else {
        bail!(".npy array has {} dimensions, not 2", dims.len());
    };
    Ok(NpyInfo {
        data_offset: prefix + len,
        rows,
        cols: usize::try_from(cols).context("bad .npy shape")?,
    })
}

/// An `.npy` file of float32 rows that grows batch by batch.
#[derive(Debug)]
pub struct NpyAppender {
    file: File,
    path: PathBuf,
    /// Rows written (committed or not).
    rows: u64,
    /// Rows the header counts.
    committed: u64,
    cols: usize,
}

impl NpyAppender {
    /// Opens (creating) `path` for rows `cols` wide and takes its lock
    /// ([`super::exclusive`]), changing nothing in it: the caller [cuts](Self::cut) it
    /// to the rows it keeps once the marker commits no more.
    pub fn open(path: &Path, cols: usize) -> Result<Self> {
        let ctx = || format!("opening {}", path.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(ctx)?;
        if !file.metadata().with_context(ctx)?.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        super::exclusive::lock_exclusive(&file, path)?;
        Ok(NpyAppender {
            file,
            path: path.to_owned(),
            rows: 0,
            committed: u64::MAX,
            cols,
        })
    }

    /// Keeps the first `keep` rows (a new file when `keep` is 0), then rewrites the
    /// header. A kept file must be one vtde wrote, with these columns and at least `keep`
    /// rows.
    pub fn cut(&mut self, keep: u64) -> Result<()> {
        let ctx = || format!("opening {}", self.path.display());
        let cols = self.cols;
        if keep > 0 {
            self.file.seek(SeekFrom::Start(0)).with_context(ctx)?;
            let info = read_header(&mut self.file).with_context(ctx)?;
            let data_rows = self
                .file
                .metadata()
                .with_context(ctx)?
                .len()
                .saturating_sub(HEADER_LEN)
                / (cols as u64 * 4).max(1);
            if info.data_offset != HEADER_LEN || info.cols != cols || data_rows < keep {
                bail!(
                    "{} does not hold {keep} rows of {cols} values written by vtde",
                    self.path.display()
                );
            }
        }
        self.rows = keep;
        self.committed = u64::MAX;
        let len = HEADER_LEN + keep * cols as u64 * 4;
        self.file.set_len(len).with_context(ctx)?;
        self.commit()
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends rows (not yet counted by the header).
    pub fn append(&mut self, rows: ArrayView2<'_, f32>) -> Result<()> {
        if rows.ncols() != self.cols {
            bail!(
                "embeddings of width {} do not fit {} ({} columns)",
                rows.ncols(),
                self.path.display(),
                self.cols
            );
        }
        let mut bytes = Vec::with_capacity(rows.len() * 4);
        for v in rows.iter() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let offset = HEADER_LEN + self.rows * self.cols as u64 * 4;
        let write = |f: &mut File| -> std::io::Result<()> {
            f.seek(SeekFrom::Start(offset))?;
            f.write_all(&bytes)
        };
        write(&mut self.file).with_context(|| format!("writing {}", self.path.display()))?;
        self.rows += rows.nrows() as u64;
        Ok(())
    }

    /// Makes the appended rows durable, then counts them in the header.
    pub fn commit(&mut self) -> Result<()> {
        if self.committed == self.rows {
            return Ok(());
        }
        let header = header(self.rows, self.cols);
        let commit = |f: &mut File| -> std::io::Result<()> {
            f.sync_data()?;
            f.seek(SeekFrom::Start(0))?;
            f.write_all(&header)?;
            f.sync_data()
        };
        commit(&mut self.file).with_context(|| format!("writing {}", self.path.display()))?;
        self.committed = self.rows;
        Ok(())
    }
}

/// Reads rows `start..start + n` of a float32 `.npy` file whose header is `info`.
pub fn read_rows(file: &mut File, info: &NpyInfo, start: u64, n: usize) -> Result<Vec<f32>> {
    let row_bytes = info.cols * 4;
    let mut bytes = vec![0u8; n * row_bytes];
    file.seek(SeekFrom::Start(info.data_offset + start * row_bytes as u64))?;
    file.read_exact(&mut bytes)
        .context("the .npy file is shorter than its header says")?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vtde_runtime::ndarray::Array2;

    #[test]
    fn header_is_fixed_size_and_parses() {
        for (rows, cols) in [(0, 512), (3, 8), (u64::MAX, 100_000)] {
            let h = header(rows, cols);
            assert_eq!(h.len() as u64, HEADER_LEN);
            assert_eq!(h.len() % 64, 0);
            let info = read_header(&mut h.as_slice()).expect("parses");
            assert_eq!(
                info,
                NpyInfo {
                    data_offset: HEADER_LEN,
                    rows,
                    cols
                }
            );
        }
    }

    #[test]
    fn numpy_written_headers_parse() {
        // What `np.save` writes for np.zeros((2, 3), np.float32) (version 1.0).
        let dict = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        let len = 128 - 10;
        h.extend_from_slice(&(len as u16).to_le_bytes());
        h.extend_from_slice(dict);
        h.resize(127, b' ');
        h.push(b'\n');
        let info = read_header(&mut h.as_slice()).expect("parses");
        assert_eq!((info.rows, info.cols), (2, 3));
        let f8 = String::from_utf8_lossy(&h).replace("<f4", "<f8");
        assert!(read_header(&mut f8.as_bytes()).is_err());
    }

    #[test]
    fn appender_counts_only_committed_rows_and_resumes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("e.npy");
        let a = Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f32);
        let mut npy = NpyAppender::open(&path, 3).expect("create");
        npy.cut(0).expect("cut");
        npy.append(a.view()).expect("append");
        npy.commit().expect("commit");
        npy.append(a.view()).expect("append");
        // Not committed: the header still says 2 rows.
        let mut f = File::open(&path).expect("open");
        let info = read_header(&mut f).expect("header");
        assert_eq!(info.rows, 2);
        drop(npy);
        // Resuming keeps the committed rows and drops the rest.
        let mut npy = NpyAppender::open(&path, 3).expect("reopen");
        npy.cut(2).expect("cut");
        assert_eq!(npy.rows(), 2);
        npy.append(a.view()).expect("append");
        npy.commit().expect("commit");
        let mut f = File::open(&path).expect("open");
        let info = read_header(&mut f).expect("header");
        assert_eq!(info.rows, 4);
        let values = read_rows(&mut f, &info, 0, 4).expect("rows");
        let expected: Vec<f32> = a.iter().chain(a.iter()).copied().collect();
        assert_eq!(values, expected);
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len(),
            HEADER_LEN + 4 * 3 * 4
        );
        drop(npy);
        let mut wrong = NpyAppender::open(&path, 4).expect("reopen");
        assert!(wrong.cut(2).is_err(), "wrong width");
    }
}
