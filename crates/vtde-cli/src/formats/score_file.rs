//! A score results file (`vtde score -o FILE`), its errors file and its progress marker.
//!
//! | file | what |
//! |---|---|
//! | `FILE` | a record per scored image: CSV with a header, or JSONL ([`ScoreRecords`]) |
//! | `FILE.errors.csv` (`.jsonl`) | path and reason per failed file (`--errors` elsewhere) |
//! | `FILE.progress.json` | the commit marker ([`super::journal`]): run, settings, bytes |
//!
//! Without `-o`, records go to stdout (the errors file only where `--errors` says) and
//! there is no marker; so with an `-o` that is no regular file (`/dev/null`, a FIFO). `--resume` continues the committed part of a file; `vtde merge`
//! joins the files of `--shard` runs.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::args::Format;
use crate::formats::journal::{
    read_prefix, resumable_run, AppendFile, Commit, Marker, RunInfo, MARKER_VERSION,
};
use crate::formats::records::{error_header, error_record, scan, ScoreRecords};
use crate::inputs::{ImageReading, Selection};

/// The `kind` of a score run's marker.
pub const MARKER_KIND: &str = "vtde-progress";

/// The settings recorded in the progress marker: what shapes the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSettings {
    pub labels: Vec<String>,
    pub templates: Vec<String>,
    pub top_k: Option<usize>,
    pub format: Format,
    pub precision: String,
    pub selection: Selection,
    pub reading: ImageReading,
}

impl ScoreSettings {
    /// The settings recorded in a run.
    pub fn of(run: &RunInfo) -> Result<Self> {
        serde_json::from_value(run.settings.clone()).context("the marker has no score settings")
    }

    /// How the records of these settings are written.
    pub fn records(&self) -> ScoreRecords {
        ScoreRecords {
            format: self.format,
            labels: self.labels.clone(),
            top_k: self.top_k,
        }
    }
}

/// The marker of a results file: `FILE.progress.json`.
pub fn marker_path(output: &Path) -> PathBuf {
    with_suffix(output, ".progress.json")
}

/// The errors file of a results file, unless `--errors` says otherwise.
pub fn default_errors_path(output: &Path, format: Format) -> PathBuf {
    with_suffix(
        output,
        match format {
            Format::Csv => ".errors.csv",
            Format::Jsonl => ".errors.jsonl",
        },
    )
}

/// `path` with `suffix` appended to its file name (`out.csv` → `out.csv.progress.json`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// What an earlier run already wrote (`--resume`).
#[derive(Debug, Default)]
pub struct Prior {
    /// Paths already scored or failed.
    pub done: HashSet<String>,
    /// Records and failures in the files.
    pub records: u64,
    pub failed: u64,
}

enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File(AppendFile),
}

/// The results, the errors file and the marker of one score run.
pub struct ScoreOutput {
    sink: Sink,
    format: Format,
    errors: Option<AppendFile>,
    marker: Option<(PathBuf, Marker)>,
}

impl ScoreOutput {
    /// Opens the results (`output`, else stdout) and the errors file: afresh, or
    /// continuing the committed part of an earlier run (`resume`) with the same settings.
    /// Both files are locked for the run ([`super::exclusive`]) before anything in them
    /// changes, and the marker is replaced (committing only what is kept, incomplete)
    /// before they are cut. An `output` that is no regular file (`/dev/null`, a FIFO) is
    /// written as a stream, like stdout: no marker, nothing to resume.
    pub fn open(
        output: Option<&Path>,
        errors: Option<&Path>,
        records: &ScoreRecords,
        run: RunInfo,
        resume: bool,
    ) -> Result<(Self, Prior)> {
        let format = records.format;
        let header = records.header();
        let err_header = error_header(format);
        let sink = match output {
            Some(output) => {
                create_parent(output)?;
                let sink = AppendFile::open(output)?;
                if !sink.is_regular() && resume {
                    bail!(
                        "cannot resume {}: it is not a regular file (--resume needs the \
                         results file and its progress marker)",
                        output.display()
                    );
                }
                Sink::File(sink)
            }
            None => Sink::Stdout(std::io::BufWriter::new(std::io::stdout())),
        };
        let mut errors_file = match errors {
            Some(e) => {
                create_parent(e)?;
                Some(AppendFile::open(e)?)
            }
            None => None,
        };
        let (output, mut sink) = match (output, sink) {
            (Some(output), Sink::File(f)) if f.is_regular() => (output, f),
            (_, sink) => {
                // A stream: stdout, a device or a FIFO. Written afresh, no marker.
                let out = ScoreOutput {
                    sink,
                    format,
                    errors: None,
                    marker: None,
                };
                return out.stream(errors_file, header, err_header);
            }
        };
        let Some(mut errors_file) = errors_file.take() else {
            bail!("no errors file for {}", output.display());
        };
        let marker_path = marker_path(output);
        let earlier = resumable_run(&marker_path, resume, &run, output)?;
        let mut prior = Prior::default();
        // What to keep of each file, and whether its header is there.
        let mut keep = (0, 0);
        let mut headers = (false, false);
        match earlier {
            Some(marker) => {
                let bytes = read_prefix(output, marker.commit.output_bytes)?;
                let found = scan(format, &bytes, header.as_deref(), "path")
                    .with_context(|| format!("cannot resume {}", output.display()))?;
                let err_bytes = read_prefix(errors_file.path(), marker.commit.errors_bytes)?;
                let failed = scan(format, &err_bytes, err_header.as_deref(), "path")
                    .with_context(|| format!("cannot resume {}", errors_file.path().display()))?;
                prior.records = found.records.len() as u64;
                prior.failed = failed.records.len() as u64;
                prior.done = found
                    .records
                    .into_iter()
                    .chain(failed.records)
                    .map(|r| r.key)
                    .collect();
                keep = (found.valid_len as u64, failed.valid_len as u64);
                headers = (found.header_end > 0, failed.header_end > 0);
            }
            None => {
                if resume && std::fs::metadata(output).is_ok_and(|m| m.len() > 0) {
                    eprintln!(
                        "vtde score: no progress marker {}; starting {} afresh",
                        marker_path.display(),
                        output.display()
                    );
                }
            }
        }
        // The marker first: it must not commit (or call complete) what is cut next.
        let mut marker = Marker {
            kind: MARKER_KIND.into(),
            version: MARKER_VERSION,
            run,
            commit: Commit {
                output_bytes: keep.0,
                errors_bytes: keep.1,
                rows: 0,
                done: prior.records,
                failed: prior.failed,
            },
            complete: false,
        };
        marker.write(&marker_path)?;
        sink.cut(keep.0)?;
        errors_file.cut(keep.1)?;
        if let (false, Some(h)) = (headers.0, &header) {
            sink.push(h);
        }
        if let (false, Some(h)) = (headers.1, &err_header) {
            errors_file.push(h);
        }
        marker.commit = Commit::default();
        let mut out = ScoreOutput {
            sink: Sink::File(sink),
            format,
            errors: Some(errors_file),
            marker: Some((marker_path, marker)),
        };
        out.write_marker(prior.records, prior.failed, false)?;
        Ok((out, prior))
    }

    /// Starts a stream (stdout, a device or a FIFO): the headers, and the errors file
    /// afresh.
    fn stream(
        mut self,
        errors: Option<AppendFile>,
        header: Option<String>,
        err_header: Option<String>,
    ) -> Result<(Self, Prior)> {
        if let Some(mut e) = errors {
            e.cut(0)?;
            if let Some(h) = &err_header {
                e.push(h);
            }
            self.errors = Some(e);
        }
        if let Some(h) = &header {
            match &mut self.sink {
                Sink::Stdout(w) => w.write_all(h.as_bytes()).context("writing to stdout")?,
                Sink::File(f) => f.push(h),
            }
        }
        Ok((self, Prior::default()))
    }

    /// Appends a record.
    pub fn record(&mut self, line: &str) {
        match &mut self.sink {
            // Stdout is buffered; errors surface at the next flush.
            Sink::Stdout(w) => {
                let _ = w.write_all(line.as_bytes());
            }
            Sink::File(f) => f.push(line),
        }
    }

    /// Records a failed file.
    pub fn error(&mut self, path: &str, reason: &str) {
        if let Some(e) = &mut self.errors {
            e.push(&error_record(self.format, path, reason));
        }
    }

    /// Writes what is pending, makes it durable, and moves the marker forward: `done`
    /// records and `failed` files in all, earlier runs included.
    pub fn commit(&mut self, done: u64, failed: u64, complete: bool) -> Result<()> {
        self.write_marker(done, failed, complete)
    }

    fn write_marker(&mut self, done: u64, failed: u64, complete: bool) -> Result<()> {
        let output_bytes = match &mut self.sink {
            Sink::Stdout(w) => {
                w.flush().context("writing to stdout")?;
                0
            }
            Sink::File(f) => f.flush()?,
        };
        let errors_bytes = match &mut self.errors {
            Some(e) => e.flush()?,
            None => 0,
        };
        let Some((path, marker)) = &mut self.marker else {
            return Ok(());
        };
        if let Sink::File(f) = &self.sink {
            f.sync()?;
        }
        if let Some(e) = &self.errors {
            e.sync()?;
        }
        marker.commit = Commit {
            output_bytes,
            errors_bytes,
            rows: 0,
            done,
            failed,
        };
        marker.complete = complete;
        marker.write(path)
    }
}

/// Creates the directory an output file goes in.
fn create_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}
