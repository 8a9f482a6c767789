//! `vtde score PACKAGE PATHS... --labels ...`: zero-shot classification of image files.
//!
//! The label embeddings are computed once, before the images: with templates, each
//! label's embedding is the mean of its templated texts' normalized embeddings,
//! normalized again (CLIP's prompt ensembling). Images flow through the decoding pool
//! ([`crate::pipeline`]); each scored image gives one record: its path and the
//! probability of each label (softmax over the labels, as transformers'
//! `logits_per_image.softmax(1)`), or the top k. A file that cannot be read is reported
//! on stderr and in the errors file, and the run goes on.
//!
//! With `-o FILE`, results are appended batch by batch and `FILE.progress.json` commits
//! them ([`crate::journal`]), so `--resume` continues a killed run; `vtde merge` joins
//! the results of `--shard` runs.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use vtde_runtime::ndarray::{s, Array2, Axis};
use vtde_runtime::similarity::l2_normalize;
use vtde_runtime::Model;

use crate::args::{Format, ScoreArgs};
use crate::commands::{
    embed_pixels, open_model_reading, output_format, package_identity, with_suffix, ImageReading,
};
use crate::inputs::{collect_inputs, Input, Selection};
use crate::journal::{read_prefix, AppendFile, Commit, Marker, RunInfo, MARKER_VERSION};
use crate::pipeline::{self, PipelineOptions};
use crate::progress::Reporter;
use crate::records::{error_header, error_record, scan, ScoreRecords};
use crate::Outcome;

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
    pub fn records(&self) -> ScoreRecords {
        ScoreRecords {
            format: self.format,
            labels: self.labels.clone(),
            top_k: self.top_k,
        }
    }
}

/// Where the marker and the errors file of a results file are.
pub fn marker_path(output: &Path) -> PathBuf {
    with_suffix(output, ".progress.json")
}

pub fn default_errors_path(output: &Path, format: Format) -> PathBuf {
    with_suffix(
        output,
        match format {
            Format::Csv => ".errors.csv",
            Format::Jsonl => ".errors.jsonl",
        },
    )
}

pub fn run(args: &ScoreArgs) -> Result<Outcome> {
    let labels = labels(args)?;
    for t in &args.template {
        if !t.contains("{}") {
            bail!("--template {t:?} has no {{}} for the label");
        }
    }
    let format = output_format(args.output.format, args.output.output.as_deref());
    let settings = ScoreSettings {
        labels,
        templates: args.template.clone(),
        top_k: args.top_k.map(|k| k as usize),
        format,
        precision: args.runtime.precision.to_string(),
        selection: Selection::new(
            &args.input.extensions,
            args.input.hidden,
            args.input.follow_links,
        ),
        reading: ImageReading::from_args(&args.pipeline),
    };
    let records = settings.records();

    let model = open_model_reading(&args.package, &args.runtime, settings.reading.options())?;
    let label_embeds = label_embeddings(&model, &settings.labels, &settings.templates)?;

    let shard = args.input.shard;
    let inputs: Vec<Input> = collect_inputs(&args.input.paths, &settings.selection)
        .into_iter()
        .filter(|i| i.in_shard(shard))
        .collect();
    let batch_size = args.pipeline.batch_size as usize;
    if args.model_only {
        return model_only(&model, &inputs, label_embeds.view(), batch_size);
    }

    let (package, package_sha256) = package_identity(&args.package)?;
    let run = RunInfo {
        command: "score".into(),
        package,
        package_sha256,
        settings: serde_json::to_value(&settings).context("serializing the settings")?,
        roots: args
            .input
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        shard,
    };
    let errors_path = match (&args.output.errors, &args.output.output) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(o)) => Some(default_errors_path(o, format)),
        (None, None) => None,
    };
    let (mut out, prior) = Output::open(
        args.output.output.as_deref(),
        errors_path.as_deref(),
        &records,
        run,
        args.output.resume,
    )?;

    let todo: Vec<Input> = inputs
        .into_iter()
        .filter(|i| !prior.done.contains(&i.display()))
        .collect();
    let mut reporter = Reporter::new("score", todo.len() as u64);
    reporter.skipped = prior.records + prior.failed;
    reporter.failed_before = prior.failed;
    if let Some(shard) = shard {
        reporter.note(&format!(
            "vtde score: shard {shard}: {} files to score",
            todo.len()
        ));
    }

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
                let scores = model
                    .score(embeds.view(), label_embeds.view())
                    .context("scoring")?;
                for (&i, probs) in batch.items.iter().zip(scores.probs_per_image.rows()) {
                    let probs: Vec<f32> = probs.to_vec();
                    out.record(&records.record(&todo[i].display(), &probs));
                }
                reporter.wrote(batch.items.len() as u64);
            }
            out.commit(&reporter, false)
        },
    );
    // Each batch committed itself; the last commit marks the run complete.
    let finished = result.and_then(|()| out.commit(&reporter, true));
    reporter.finish("scored", "images");
    finished?;
    Ok(if reporter.failed_total() == 0 {
        Outcome::AllGood
    } else {
        Outcome::SomeInputsFailed
    })
}

/// `--labels` or the lines of `--labels-file`; at least one, no duplicates.
fn labels(args: &ScoreArgs) -> Result<Vec<String>> {
    let labels = match &args.labels_file {
        // Spaces around a label in a file are layout, not meaning.
        Some(file) => crate::commands::read_lines(file)?
            .iter()
            .map(|l| l.trim().to_owned())
            .collect(),
        None => args.labels.clone(),
    };
    if labels.is_empty() {
        bail!("no labels given");
    }
    let mut seen = HashSet::new();
    for l in &labels {
        if !seen.insert(l) {
            bail!("label {l:?} is given twice");
        }
    }
    Ok(labels)
}

/// The labels' text embeddings, `[labels, P]`, L2-normalized. With templates: the mean
/// of each label's normalized templated embeddings, normalized again.
pub fn label_embeddings(
    model: &Model,
    labels: &[String],
    templates: &[String],
) -> Result<Array2<f32>> {
    if templates.is_empty() {
        return model.embed_texts(labels).context("embedding the labels");
    }
    let texts: Vec<String> = labels
        .iter()
        .flat_map(|l| templates.iter().map(move |t| t.replace("{}", l)))
        .collect();
    let embeds = model.embed_texts(&texts).context("embedding the labels")?;
    let t = templates.len();
    let mut means = Array2::<f32>::zeros((labels.len(), embeds.ncols()));
    for (i, mut row) in means.rows_mut().into_iter().enumerate() {
        let block = embeds.slice(s![i * t..(i + 1) * t, ..]);
        if let Some(mean) = block.mean_axis(Axis(0)) {
            row.assign(&mean);
        }
    }
    Ok(l2_normalize(means.view()))
}

/// Benchmark aid: the model and scoring alone, on the first batch's pixels, for as many
/// batches as the files need.
fn model_only(
    model: &Model,
    inputs: &[Input],
    label_embeds: vtde_runtime::ndarray::ArrayView2<'_, f32>,
    batch_size: usize,
) -> Result<Outcome> {
    let first: Vec<&Path> = inputs
        .iter()
        .take(batch_size)
        .map(|i| i.path.as_path())
        .collect();
    let pixels = model.load_and_preprocess(&first).pixel_values;
    if pixels.is_empty() {
        bail!("--model-only needs readable images among the first {batch_size} files");
    }
    let mut reporter = Reporter::new("score --model-only", 0);
    let mut left = inputs.len();
    while left > 0 {
        let n = left.min(pixels.len_of(Axis(0)));
        let embeds = embed_pixels(model, pixels.slice(s![..n, .., .., ..]))?;
        let scores = model
            .score(embeds.view(), label_embeds)
            .context("scoring")?;
        std::hint::black_box(&scores);
        reporter.done += n as u64;
        left -= n;
    }
    reporter.finish("scored", "images");
    Ok(Outcome::AllGood)
}

/// What an earlier run already wrote (`--resume`).
#[derive(Debug, Default)]
struct Prior {
    done: HashSet<String>,
    records: u64,
    failed: u64,
}

enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File(AppendFile),
}

/// The results, the errors file and the marker of one score run.
struct Output {
    sink: Sink,
    format: Format,
    errors: Option<AppendFile>,
    marker: Option<(PathBuf, Marker)>,
}

impl Output {
    fn open(
        output: Option<&Path>,
        errors: Option<&Path>,
        records: &ScoreRecords,
        run: RunInfo,
        resume: bool,
    ) -> Result<(Self, Prior)> {
        let format = records.format;
        let header = records.header();
        let Some(output) = output else {
            let mut stdout = std::io::BufWriter::new(std::io::stdout());
            if let Some(h) = &header {
                stdout
                    .write_all(h.as_bytes())
                    .context("writing to stdout")?;
            }
            let errors = errors.map(|e| fresh(e, error_header(format))).transpose()?;
            let out = Output {
                sink: Sink::Stdout(stdout),
                format,
                errors,
                marker: None,
            };
            return Ok((out, Prior::default()));
        };
        let errors = errors.context("no errors file")?;
        let marker_path = marker_path(output);
        let earlier = if resume {
            Marker::read(&marker_path)?
        } else {
            None
        };
        let mut prior = Prior::default();
        let (sink, errors_file) = match earlier {
            Some(marker) => {
                if let Some(why) = run.mismatch(&marker.run, false) {
                    bail!(
                        "cannot resume {}: it was {why}; run without --resume to start over",
                        output.display()
                    );
                }
                let bytes = read_prefix(output, marker.commit.output_bytes)?;
                let found = scan(format, &bytes, header.as_deref(), "path")
                    .with_context(|| format!("cannot resume {}", output.display()))?;
                let err_bytes = read_prefix(errors, marker.commit.errors_bytes)?;
                let err_header = error_header(format);
                let failed = scan(format, &err_bytes, err_header.as_deref(), "path")
                    .with_context(|| format!("cannot resume {}", errors.display()))?;
                prior.records = found.records.len() as u64;
                prior.failed = failed.records.len() as u64;
                prior.done = found
                    .records
                    .into_iter()
                    .chain(failed.records)
                    .map(|r| r.key)
                    .collect();
                let mut sink = AppendFile::open(output, found.valid_len as u64)?;
                if found.header_end == 0 {
                    if let Some(h) = &header {
                        sink.push(h);
                    }
                }
                let mut errors_file = AppendFile::open(errors, failed.valid_len as u64)?;
                if failed.header_end == 0 {
                    if let Some(h) = &err_header {
                        errors_file.push(h);
                    }
                }
                (sink, errors_file)
            }
            None => {
                if resume && std::fs::metadata(output).is_ok_and(|m| m.len() > 0) {
                    eprintln!(
                        "vtde score: no progress marker {}; starting {} afresh",
                        marker_path.display(),
                        output.display()
                    );
                }
                (fresh(output, header)?, fresh(errors, error_header(format))?)
            }
        };
        let marker = Marker {
            kind: "vtde-progress".into(),
            version: MARKER_VERSION,
            run,
            commit: Commit::default(),
            complete: false,
        };
        let mut out = Output {
            sink: Sink::File(sink),
            format,
            errors: Some(errors_file),
            marker: Some((marker_path, marker)),
        };
        out.write_marker(prior.records, prior.failed, false)?;
        Ok((out, prior))
    }

    fn record(&mut self, line: &str) {
        match &mut self.sink {
            // Stdout is buffered; errors surface at the next flush.
            Sink::Stdout(w) => {
                let _ = w.write_all(line.as_bytes());
            }
            Sink::File(f) => f.push(line),
        }
    }

    fn error(&mut self, path: &str, reason: &str) {
        if let Some(e) = &mut self.errors {
            e.push(&error_record(self.format, path, reason));
        }
    }

    /// Writes what is pending, makes it durable, and moves the marker forward.
    fn commit(&mut self, reporter: &Reporter, complete: bool) -> Result<()> {
        // `skipped` counts the earlier run's records and failures.
        let earlier_records = reporter.skipped - reporter.failed_before;
        self.write_marker(
            reporter.done + earlier_records,
            reporter.failed_total(),
            complete,
        )
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

/// A new, empty output file, with its header.
fn fresh(path: &Path, header: Option<String>) -> Result<AppendFile> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = AppendFile::open(path, 0)?;
    if let Some(h) = header {
        f.push(&h);
    }
    Ok(f)
}
