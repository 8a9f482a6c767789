//! `vtde embed` and `vtde embed-text`: embeddings directories.
//!
//! Layout of an embeddings directory:
//!
//! | file | what |
//! |---|---|
//! | `embeddings.npy` | float32 `[rows, P]`, L2-normalized, C order (`numpy.load`) |
//! | `index.jsonl` | one line per row, same order: `{"path": "..."}` or `{"text": "..."}` |
//! | `errors.jsonl` | `{"path": "...", "error": "..."}` per file that failed (images) |
//! | `meta.json` | the commit marker: package, settings, committed rows and bytes |
//!
//! Each batch appends rows to `embeddings.npy` and lines to `index.jsonl`, makes them
//! durable, rewrites the `.npy` header's row count (see [`crate::npy`]) and then replaces
//! `meta.json`. After a kill, `embeddings.npy` loads and its rows are the first lines of
//! `index.jsonl` (which may hold a few lines more: the batch in flight); `--resume` cuts
//! everything back to the committed rows and goes on. `vtde search` reads `meta.json` to
//! find the package.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use vtde_runtime::ndarray::ArrayView2;

use crate::args::{EmbedArgs, EmbedTextArgs, Format};
use crate::commands::{
    embed_pixels, open_model, open_model_reading, package_identity, read_lines, ImageReading,
};
use crate::inputs::{collect_inputs, Input, Selection};
use crate::journal::{read_prefix, AppendFile, Commit, Marker, RunInfo, MARKER_VERSION};
use crate::npy::{read_header, NpyAppender};
use crate::pipeline::{self, PipelineOptions};
use crate::progress::Reporter;
use crate::records::{error_record, json_string, scan, Record};
use crate::Outcome;

pub const EMBEDDINGS: &str = "embeddings.npy";
pub const INDEX: &str = "index.jsonl";
pub const ERRORS: &str = "errors.jsonl";
pub const META: &str = "meta.json";

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
    /// (`resume`) made with the same settings.
    pub fn open(dir: &Path, run: RunInfo, resume: bool) -> Result<(Self, Prior)> {
        let settings = EmbedSettings::of(&run)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let marker_path = dir.join(META);
        let earlier = if resume {
            Marker::read(&marker_path)?
        } else {
            None
        };
        let mut prior = Prior::default();
        let (npy, index, errors) = match earlier {
            Some(marker) => {
                if let Some(why) = run.mismatch(&marker.run, false) {
                    bail!(
                        "cannot resume {}: it was {why}; run without --resume to start over",
                        dir.display()
                    );
                }
                let committed = read_committed(dir, &marker, settings.kind)?;
                let npy = NpyAppender::open(
                    &dir.join(EMBEDDINGS),
                    settings.dim,
                    committed.keys.len() as u64,
                )?;
                let index = AppendFile::open(&dir.join(INDEX), committed.index_len)?;
                let errors = AppendFile::open(&dir.join(ERRORS), committed.errors.len() as u64)?;
                prior.keys = committed.keys;
                prior.failed = committed.failed.into_iter().map(|r| r.key).collect();
                (npy, index, errors)
            }
            None => (
                NpyAppender::open(&dir.join(EMBEDDINGS), settings.dim, 0)?,
                AppendFile::open(&dir.join(INDEX), 0)?,
                AppendFile::open(&dir.join(ERRORS), 0)?,
            ),
        };
        let marker = Marker {
            kind: "vtde-embeddings".into(),
            version: MARKER_VERSION,
            run,
            commit: Commit::default(),
            complete: false,
        };
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

    /// Copies a line of another errors file (merge).
    pub fn error_line(&mut self, line: &[u8]) {
        self.failed += 1;
        self.errors.push(&String::from_utf8_lossy(line));
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

/// Reads what `marker` commits in `dir`: the rows that the marker, the `.npy` header,
/// the `.npy` data and complete `index.jsonl` lines all hold.
pub fn read_committed(dir: &Path, marker: &Marker, kind: Kind) -> Result<Committed> {
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
    let index_path = dir.join(INDEX);
    let index = read_prefix(&index_path, marker.commit.output_bytes)?;
    let found = scan(Format::Jsonl, &index, None, kind.key())
        .with_context(|| format!("reading {}", index_path.display()))?;
    let rows = marker
        .commit
        .rows
        .min(info.rows)
        .min(data_rows)
        .min(found.records.len() as u64) as usize;
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

fn run_info(
    command: &str,
    package: &Path,
    settings: &EmbedSettings,
    roots: Vec<String>,
    shard: Option<crate::args::Shard>,
) -> Result<RunInfo> {
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

/// `vtde embed`.
pub fn run(args: &EmbedArgs) -> Result<Outcome> {
    let reading = ImageReading::from_args(&args.pipeline);
    let model = open_model_reading(&args.package, &args.runtime, reading.options())?;
    let selection = Selection::new(
        &args.input.extensions,
        args.input.hidden,
        args.input.follow_links,
    );
    let settings = EmbedSettings {
        kind: Kind::Image,
        dim: model.manifest().projection_dim,
        normalized: true,
        precision: args.runtime.precision.to_string(),
        selection: Some(selection.clone()),
        reading: Some(reading),
    };
    let shard = args.input.shard;
    let roots = args
        .input
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let run = run_info("embed", &args.package, &settings, roots, shard)?;
    let inputs: Vec<Input> = collect_inputs(&args.input.paths, &selection)
        .into_iter()
        .filter(|i| i.in_shard(shard))
        .collect();
    let (mut out, prior) = EmbedOutput::open(&args.output, run, args.resume)?;
    let done: HashSet<&str> = prior
        .keys
        .iter()
        .chain(&prior.failed)
        .map(String::as_str)
        .collect();
    let todo: Vec<Input> = inputs
        .into_iter()
        .filter(|i| !done.contains(i.display().as_str()))
        .collect();
    let mut reporter = Reporter::new("embed", todo.len() as u64);
    reporter.skipped = (prior.keys.len() + prior.failed.len()) as u64;
    reporter.failed_before = prior.failed.len() as u64;

    let options = PipelineOptions::from_args(&args.pipeline);
    let result = pipeline::run(
        &todo,
        model.image_preprocessor(),
        model.image_options(),
        options,
        |batch| {
            for (i, reason) in &batch.failures {
                let path = todo[*i].display();
                out.error(&path, reason);
                reporter.fail(&path, reason);
            }
            if !batch.items.is_empty() {
                let embeds = embed_pixels(&model, batch.pixels())?;
                let paths: Vec<String> = batch.items.iter().map(|&i| todo[i].display()).collect();
                out.add(embeds.view(), paths.iter().map(String::as_str))?;
                reporter.wrote(batch.items.len() as u64);
            }
            out.commit(false)
        },
    );
    let finished = result.and_then(|()| out.commit(true));
    reporter.finish("embedded", "images");
    finished?;
    Ok(if reporter.failed_total() == 0 {
        Outcome::AllGood
    } else {
        Outcome::SomeInputsFailed
    })
}

/// `vtde embed-text`.
pub fn run_text(args: &EmbedTextArgs) -> Result<Outcome> {
    let texts = read_lines(&args.texts_file)?;
    let model = open_model(&args.package, &args.runtime)?;
    let settings = EmbedSettings {
        kind: Kind::Text,
        dim: model.manifest().projection_dim,
        normalized: true,
        precision: args.runtime.precision.to_string(),
        selection: None,
        reading: None,
    };
    let roots = vec![args.texts_file.display().to_string()];
    let run = run_info("embed-text", &args.package, &settings, roots, None)?;
    let (mut out, prior) = EmbedOutput::open(&args.output, run, args.resume)?;
    // Texts are embedded in file order, so the rows done are a prefix of the texts.
    let start = prior.keys.len();
    if start > texts.len() || prior.keys[..] != texts[..start] {
        bail!(
            "cannot resume {}: its texts are not the first lines of {}; run without --resume",
            args.output.display(),
            args.texts_file.display()
        );
    }
    let mut reporter = Reporter::new("embed-text", (texts.len() - start) as u64);
    reporter.skipped = start as u64;
    let mut result = Ok(());
    for chunk in texts[start..].chunks(args.batch_size as usize) {
        result = model
            .embed_texts(chunk)
            .context("embedding texts")
            .and_then(|e| out.add(e.view(), chunk.iter().map(String::as_str)))
            .and_then(|()| out.commit(false));
        if result.is_err() {
            break;
        }
        reporter.wrote(chunk.len() as u64);
    }
    let finished = result.and_then(|()| out.commit(true));
    reporter.finish("embedded", "texts");
    finished?;
    Ok(Outcome::AllGood)
}
