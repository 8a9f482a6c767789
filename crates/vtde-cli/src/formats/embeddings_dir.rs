//! The embeddings directory that `vtde embed`, `vtde embed-text` and `vtde merge`
//! write, and that `vtde search`, `--resume` and `vtde merge` read back.
//!
//! Layout:
//!
//! | file | what |
//! |---|---|
//! | `embeddings.npy` | float32 `[rows, P]`, L2-normalized, C order (`numpy.load`) |
//! | `index.jsonl` | one line per row, same order: `{"path": "..."}` or `{"text": "..."}` |
//! | `errors.jsonl` | `{"path": "...", "error": "..."}` per file that failed (images) |
//! | `meta.json` | the commit marker: package, settings, committed rows and bytes |
//!
//! Each batch appends rows to `embeddings.npy` and lines to `index.jsonl`, makes them
//! durable, rewrites the `.npy` header's row count (see [`super::npy`]) and then replaces
//! `meta.json`. After a kill, `embeddings.npy` loads and its rows are the first lines of
//! `index.jsonl` (which may hold a few lines more: the batch in flight); `--resume` cuts
//! everything back to the committed rows and goes on. `vtde search` reads `meta.json` to
//! find the package.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use vtde_runtime::ndarray::ArrayView2;

use crate::args::Format;
use crate::formats::exclusive::Outputs;
use crate::formats::journal::{
    read_prefix, resumable_run, AppendFile, Commit, Marker, RunInfo, MARKER_VERSION,
};
use crate::formats::npy::{read_header, NpyAppender, NpyInfo};
use crate::formats::records::{error_record, json_string, scan, Record};
use crate::inputs::{ImageReading, Selection};

pub const EMBEDDINGS: &str = "embeddings.npy";
pub const INDEX: &str = "index.jsonl";
pub const ERRORS: &str = "errors.jsonl";
pub const META: &str = "meta.json";

/// The `kind` of an embeddings directory's marker.
pub const MARKER_KIND: &str = "vtde-embeddings";

/// The marker of an embeddings directory: `DIR/meta.json`.
pub fn marker_path(dir: &Path) -> PathBuf {
    dir.join(META)
}

/// The files of an embeddings directory, as the outputs of a run
/// ([`super::exclusive`]): the caller adds its inputs.
pub fn output_files(dir: &Path) -> Result<Outputs> {
    let mut outputs = Outputs::new();
    for name in [EMBEDDINGS, INDEX, ERRORS, META] {
        outputs.add(
            &format!("the embeddings directory's {name}"),
            &dir.join(name),
        )?;
    }
    Ok(outputs)
}

/// What the rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Image,
    Text,
}

impl Kind {
    /// The member of `index.jsonl` records.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Image => "path",
            Kind::Text => "text",
        }
    }
}

/// The settings recorded in `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedSettings {
    pub kind: Kind,
    /// Width of the rows (the projection size).
    pub dim: usize,
    pub normalized: bool,
    pub precision: String,
    /// How folders were walked and files read (images only).
    pub selection: Option<Selection>,
    pub reading: Option<ImageReading>,
}

impl EmbedSettings {
    /// The settings of image embeddings `dim` wide.
    pub fn images(
        dim: usize,
        precision: String,
        selection: Selection,
        reading: ImageReading,
    ) -> Self {
        EmbedSettings {
            kind: Kind::Image,
            dim,
            normalized: true,
            precision,
            selection: Some(selection),
            reading: Some(reading),
        }
    }

    /// The settings of text embeddings `dim` wide.
    pub fn texts(dim: usize, precision: String) -> Self {
        EmbedSettings {
            kind: Kind::Text,
            dim,
            normalized: true,
            precision,
            selection: None,
            reading: None,
        }
    }

    /// The settings recorded in a run.
    pub fn of(run: &RunInfo) -> Result<Self> {
        serde_json::from_value(run.settings.clone()).context("meta.json has no embedding settings")
    }
}

/// What an earlier run left in the directory.
#[derive(Debug, Default)]
pub struct Prior {
    /// Keys of the rows, in order.
    pub keys: Vec<String>,
    /// Paths that failed.
    pub failed: Vec<String>,
}

/// Writes an embeddings directory.
pub struct EmbedOutput {
    npy: NpyAppender,
    index: AppendFile,
    errors: AppendFile,
    marker: Marker,
    marker_path: PathBuf,
    kind: Kind,
    failed: u64,
}

impl EmbedOutput {
    /// Opens `dir` for a run: afresh, or continuing the committed part of an earlier run
    /// (`resume`) made with the same settings. `embeddings.npy` is locked for the run
    /// ([`super::exclusive`]) before anything in the directory changes, and `meta.json` is
    /// replaced (committing only what is kept, incomplete) before any file is cut.
    pub fn open(dir: &Path, run: RunInfo, resume: bool) -> Result<(Self, Prior)> {
        let settings = EmbedSettings::of(&run)?;
        if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
            bail!(
                "{} is not a directory: an embeddings directory is written there",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut npy = NpyAppender::open(&dir.join(EMBEDDINGS), settings.dim)?;
        let mut index = AppendFile::open(&dir.join(INDEX))?;
        let mut errors = AppendFile::open(&dir.join(ERRORS))?;
        let marker_path = marker_path(dir);
        let earlier = resumable_run(&marker_path, resume, &run, dir)?;
        let mut prior = Prior::default();
        let mut commit = Commit::default();
        if let Some(marker) = earlier {
            let committed = read_committed(dir, &marker, settings.kind)
                .with_context(|| format!("cannot resume {}", dir.display()))?;
            prior.keys = committed.keys;
            prior.failed = committed.failed.into_iter().map(|r| r.key).collect();
            commit = Commit {
                output_bytes: committed.index_len,
                errors_bytes: committed.errors.len() as u64,
                rows: prior.keys.len() as u64,
                done: prior.keys.len() as u64,
                failed: prior.failed.len() as u64,
            };
        }
        // The marker first: it must not commit (or call complete) what is cut next.
        let marker = Marker {
            kind: MARKER_KIND.into(),
            version: MARKER_VERSION,
            run,
            commit,
            complete: false,
        };
        marker.write(&marker_path)?;
        npy.cut(commit.rows)?;
        index.cut(commit.output_bytes)?;
        errors.cut(commit.errors_bytes)?;
        let mut out = EmbedOutput {
            npy,
            index,
            errors,
            marker,
            marker_path,
            kind: settings.kind,
            failed: prior.failed.len() as u64,
        };
        out.commit(false)?;
        Ok((out, prior))
    }

    /// Appends rows and their keys (paths or texts).
    pub fn add<'a>(
        &mut self,
        rows: ArrayView2<'_, f32>,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        self.npy.append(rows)?;
        for key in keys {
            self.index.push(&format!(
                "{{\"{}\":{}}}\n",
                self.kind.key(),
                json_string(key)
            ));
        }
        Ok(())
    }

    /// Records a failed file.
    pub fn error(&mut self, path: &str, reason: &str) {
        self.failed += 1;
        self.errors.push(&error_record(Format::Jsonl, path, reason));
    }

    /// Copies a line of another errors file (merge), byte for byte.
    pub fn error_line(&mut self, line: &[u8]) {
        self.failed += 1;
        self.errors.push_bytes(line);
    }

    /// Makes everything durable, counts the rows in the `.npy` header, then moves the
    /// marker forward.
    pub fn commit(&mut self, complete: bool) -> Result<()> {
        let index_bytes = self.index.flush()?;
        let errors_bytes = self.errors.flush()?;
        self.index.sync()?;
        self.errors.sync()?;
        self.npy.commit()?;
        self.marker.commit = Commit {
            output_bytes: index_bytes,
            errors_bytes,
            rows: self.npy.rows(),
            done: self.npy.rows(),
            failed: self.failed,
        };
        self.marker.complete = complete;
        self.marker.write(&self.marker_path)
    }
}

/// The committed content of an embeddings directory.
pub struct Committed {
    /// Keys of the committed rows, in order.
    pub keys: Vec<String>,
    /// Bytes of `index.jsonl` that hold them.
    pub index_len: u64,
    /// The complete records of the errors file, and its bytes up to their end.
    pub failed: Vec<Record>,
    pub errors: Vec<u8>,
}

/// Opens `DIR/embeddings.npy` for reading rows ([`super::npy::read_rows`]).
pub fn open_rows(dir: &Path) -> Result<(std::fs::File, NpyInfo)> {
    let npy = dir.join(EMBEDDINGS);
    let mut file =
        std::fs::File::open(&npy).with_context(|| format!("opening {}", npy.display()))?;
    let info = read_header(&mut file).with_context(|| format!("reading {}", npy.display()))?;
    Ok((file, info))
}

/// Reads what `marker` commits in `dir`: the rows that the marker counts, which the
/// `.npy` header, the `.npy` data and the complete `index.jsonl` lines must all hold (a
/// run writes them all before it commits), in rows as wide as the marker says.
pub fn read_committed(dir: &Path, marker: &Marker, kind: Kind) -> Result<Committed> {
    let settings = EmbedSettings::of(&marker.run)?;
    if settings.kind != kind {
        bail!(
            "{} holds {:?} embeddings, not {kind:?} ones",
            dir.display(),
            settings.kind
        );
    }
    let rows = marker.commit.rows;
    let npy_path = dir.join(EMBEDDINGS);
    let mut file = std::fs::File::open(&npy_path)
        .with_context(|| format!("opening {}", npy_path.display()))?;
    let info = read_header(&mut file).with_context(|| format!("reading {}", npy_path.display()))?;
    let data_len = file
        .metadata()
        .with_context(|| format!("reading {}", npy_path.display()))?
        .len()
        .saturating_sub(info.data_offset);
    let data_rows = data_len / (info.cols as u64 * 4).max(1);
    let damaged = |what: String| {
        anyhow::anyhow!(
            "{} is damaged: {what}, but {} commits {rows} rows of {} values",
            dir.display(),
            META,
            settings.dim
        )
    };
    if info.cols != settings.dim {
        return Err(damaged(format!(
            "{EMBEDDINGS} holds rows of {} values",
            info.cols
        )));
    }
    if info.rows < rows {
        return Err(damaged(format!(
            "the header of {EMBEDDINGS} counts {} rows",
            info.rows
        )));
    }
    if data_rows < rows {
        return Err(damaged(format!(
            "{EMBEDDINGS} holds the data of {data_rows} rows"
        )));
    }
    let index_path = dir.join(INDEX);
    let index = read_prefix(&index_path, marker.commit.output_bytes)?;
    let found = scan(Format::Jsonl, &index, None, kind.key())
        .with_context(|| format!("reading {}", index_path.display()))?;
    if (found.records.len() as u64) < rows {
        return Err(damaged(format!(
            "{INDEX} holds {} complete lines",
            found.records.len()
        )));
    }
    let rows = rows as usize;
    let index_len = match rows {
        0 => 0,
        n => found.records[n - 1].end as u64,
    };
    let keys = found
        .records
        .into_iter()
        .take(rows)
        .map(|r| r.key)
        .collect();
    let mut errors = read_prefix(&dir.join(ERRORS), marker.commit.errors_bytes)?;
    let failed = scan(Format::Jsonl, &errors, None, "path")?;
    errors.truncate(failed.valid_len);
    Ok(Committed {
        keys,
        index_len,
        failed: failed.records,
        errors,
    })
}
