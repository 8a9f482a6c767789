//! Writing a package directory: each file goes to a temporary name and is renamed into
//! place, and `vtde.json` is written last, so an interrupted export never leaves a
//! package that looks complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::onnx::proto::ModelProto;

/// Writes files into a package directory.
#[derive(Debug)]
pub struct PackageWriter {
    dir: PathBuf,
}

impl PackageWriter {
    /// Creates `dir` (and its parents). An existing `vtde.json` in it is removed first,
    /// so that the directory is not taken for a package until the export completes.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_owned(),
            source,
        })?;
        let manifest = dir.join(vtde_runtime::manifest::MANIFEST_FILE);
        if manifest.exists() {
            std::fs::remove_file(&manifest).map_err(|source| Error::Write {
                path: manifest,
                source,
            })?;
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Encodes and writes an ONNX model; returns its sha256 (lowercase hex).
    pub fn write_model(&self, file: &str, model: &ModelProto) -> Result<String> {
        self.write_bytes(file, &model.encode_to_vec())
    }

    /// Writes `bytes` to `file` atomically; returns their sha256 (lowercase hex).
    pub fn write_bytes(&self, file: &str, bytes: &[u8]) -> Result<String> {
        let path = self.dir.join(file);
        let tmp = self.dir.join(format!(".{file}.partial"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }
}
