//! Feature matrices on disk as `.npy` files (little-endian float32, C order: what
//! `numpy.load` reads), written row by row ([`NpyWriter`], to a temporary name renamed
//! into place when complete, so that a killed run leaves no half file under the final
//! name) and read a few rows at a time ([`NpyFeatures`]), so that a feature cache of any
//! size streams through a fit in bounded memory.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::train::FeatureRows;

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";
/// The header (magic, length and dict) is padded to this many bytes, so that the row
/// count can be written over it once known.
const HEADER_BYTES: usize = 128;

fn header(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut bytes = MAGIC.to_vec();
    let len = (HEADER_BYTES - MAGIC.len() - 2) as u16;
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.resize(HEADER_BYTES - 1, b' ');
    bytes.push(b'\n');
    bytes
}

/// Writes a `[rows, cols]` float32 `.npy` file a row at a time.
pub struct NpyWriter {
    path: PathBuf,
    temp: PathBuf,
    file: BufWriter<File>,
    cols: usize,
    rows: usize,
}

impl NpyWriter {
    /// Starts `path` (written as `path.partial` until [`NpyWriter::finish`]).
    pub fn create(path: impl AsRef<Path>, cols: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut temp = path.clone().into_os_string();
        temp.push(".partial");
        let temp = PathBuf::from(temp);
        let file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        let mut file = BufWriter::new(file);
        file.write_all(&header(0, cols))
            .map_err(|e| Error::io(&temp, e))?;
        Ok(NpyWriter {
            path,
            temp,
            file,
            cols,
            rows: 0,
        })
    }

    /// Appends rows (`[n, cols]`).
    pub fn append(&mut self, rows: ndarray::ArrayView2<'_, f32>) -> Result<()> {
        if rows.ncols() != self.cols {
            return Err(Error::Shape(format!(
                "{}: rows of {} values appended to a matrix of {}",
                self.path.display(),
                rows.ncols(),
                self.cols
            )));
        }
        for row in rows.rows() {
            for v in row {
                self.file
                    .write_all(&v.to_le_bytes())
                    .map_err(|e| Error::io(&self.temp, e))?;
            }
        }
        self.rows += rows.nrows();
        Ok(())
    }

    /// Writes the final row count and renames the file into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        let io = |e| Error::io(&self.temp, e);
        self.file.flush().map_err(io)?;
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&self.temp, e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(&self.temp, e))?;
        file.write_all(&header(self.rows, self.cols))
            .map_err(|e| Error::io(&self.temp, e))?;
        file.sync_all().map_err(|e| Error::io(&self.temp, e))?;
        std::fs::rename(&self.temp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.path)
    }
}

/// A float32 `.npy` matrix written by [`NpyWriter`], read a few rows at a time.
#[derive(Debug)]
pub struct NpyFeatures {
    path: PathBuf,
    file: File,
    rows: usize,
    cols: usize,
    row_buffer: Vec<u8>,
}

impl NpyFeatures {
    /// Opens `path` and checks its header and size.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut head = vec![0u8; HEADER_BYTES];
        file.read_exact(&mut head).map_err(|e| {
            Error::invalid(&path, format!("not a feature file written by vtde: {e}"))
        })?;
        let text = String::from_utf8_lossy(&head[MAGIC.len() + 2..]).into_owned();
        let parsed = head.starts_with(MAGIC)
            && text.contains("'descr': '<f4'")
            && text.contains("'fortran_order': False");
        let shape = text
            .split("'shape': (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .map(|dims| {
                dims.split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::parse::<usize>)
                    .collect::<std::result::Result<Vec<_>, _>>()
            });
        let (rows, cols) = match (parsed, shape) {
            (true, Some(Ok(dims))) if dims.len() == 2 => (dims[0], dims[1]),
            _ => {
                return Err(Error::invalid(
                    &path,
                    "not a float32 matrix .npy file written by vtde",
                ))
            }
        };
        let expected = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(HEADER_BYTES));
        let actual = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if expected.map(|e| e as u64) != Some(actual) {
            return Err(Error::invalid(
                &path,
                format!("holds {actual} bytes; a {rows}×{cols} float32 matrix needs {expected:?}"),
            ));
        }
        Ok(NpyFeatures {
            path,
            file,
            rows,
            cols,
            row_buffer: vec![0; cols * 4],
        })
    }

    /// Reads the whole matrix into memory.
    pub fn read_all(&mut self) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((self.rows, self.cols));
        let all: Vec<usize> = (0..self.rows).collect();
        self.gather(&all, &mut out)?;
        Ok(out)
    }
}

impl FeatureRows for NpyFeatures {
    fn row_count(&self) -> usize {
        self.rows
    }

    fn dim(&self) -> usize {
        self.cols
    }

    fn gather(&mut self, indices: &[usize], out: &mut Array2<f32>) -> Result<()> {
        for (k, &i) in indices.iter().enumerate() {
            if i >= self.rows {
                return Err(Error::invalid(
                    &self.path,
                    format!("row {i} asked of {} rows", self.rows),
                ));
            }
            let offset = (HEADER_BYTES + i * self.cols * 4) as u64;
            self.file
                .seek(SeekFrom::Start(offset))
                .and_then(|_| self.file.read_exact(&mut self.row_buffer))
                .map_err(|e| Error::io(&self.path, e))?;
            for (dst, bytes) in out
                .row_mut(k)
                .iter_mut()
                .zip(self.row_buffer.chunks_exact(4))
            {
                *dst = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_rows_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npy");
        let data = Array2::from_shape_fn((5, 3), |(r, c)| (r * 10 + c) as f32 - 0.5);
        let mut writer = NpyWriter::create(&path, 3).unwrap();
        writer.append(data.slice(ndarray::s![..2, ..])).unwrap();
        assert!(!path.exists(), "only the finished file gets the final name");
        writer.append(data.slice(ndarray::s![2.., ..])).unwrap();
        writer.finish().unwrap();
        let mut features = NpyFeatures::open(&path).unwrap();
        assert_eq!((features.row_count(), features.dim()), (5, 3));
        assert_eq!(features.read_all().unwrap(), data);
        let mut out = Array2::zeros((2, 3));
        features.gather(&[4, 1], &mut out).unwrap();
        assert_eq!(out.row(0), data.row(4));
        assert!(features.gather(&[5], &mut out).is_err());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(NpyFeatures::open(&path).is_err());
    }
}
