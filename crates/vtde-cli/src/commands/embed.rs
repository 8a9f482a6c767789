//! `vtde embed PACKAGE PATHS... -o DIR`: image embeddings into an embeddings directory
//! ([`crate::formats::embeddings_dir`]).
//!
//! Images flow through the runtime's streaming pipeline (`Model::stream_image_files`); each
//! batch's rows and paths are appended and committed, so `--resume` continues a killed
//! run (or one stopped by SIGINT or SIGTERM, which commits the batch in hand) and `vtde
//! merge` joins the directories of `--shard` runs. A file that cannot be read is reported
//! on stderr and in `errors.jsonl`, and the run goes on. The directory is locked for the
//! run, and none of its files may be an input (an image, a file of the package).

use std::collections::HashSet;

use anyhow::{Context, Result};

use crate::args::EmbedArgs;
use crate::commands::test_batch_delay;
use crate::commands::{open_model, Outcome};
use crate::formats::embeddings_dir::{output_files, EmbedOutput, EmbedSettings};
use crate::formats::journal::RunInfo;
use crate::inputs::{failure_reason, Input};
use crate::interrupt;
use crate::progress::Reporter;
use crate::settings;

pub fn run(args: &EmbedArgs) -> Result<Outcome> {
    let settings = settings::Embed::from_args(args);
    let outputs = output_files(&settings.output)?;
    outputs.package(&settings.package)?;
    let model = open_model(&settings.package, &settings.runtime)?;
    let recorded = EmbedSettings::images(
        model.manifest().projection_dim,
        settings.precision.clone(),
        settings.inputs.selection.clone(),
        settings.reading.clone(),
    );
    let run = RunInfo::new(
        "embed",
        &settings.package,
        &recorded,
        settings.inputs.recorded_roots(),
        settings.inputs.shard,
    )?;
    let inputs = settings.inputs.collect();
    outputs.inputs("an input image", inputs.iter().map(|i| i.path.as_path()))?;
    // A signal while the model loaded: stop before the outputs are touched.
    interrupt::check()?;
    let (mut out, prior) = EmbedOutput::open(&settings.output, run, settings.resume)?;
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

    let delay = test_batch_delay();
    let result = interrupt::check().and_then(|()| {
        model.stream_image_files(&todo, |batch| -> Result<()> {
            delay();
            for (i, error) in &batch.failures {
                let path = todo[*i].display();
                let reason = failure_reason(error);
                out.error(&path, &reason);
                reporter.fail(&path, &reason);
            }
            if !batch.items.is_empty() {
                let embeddings = model
                    .embed_pixel_values(batch.pixel_values())
                    .context("embedding the images")?;
                let paths: Vec<String> = batch.items.iter().map(|&i| todo[i].display()).collect();
                out.add(embeddings.view(), paths.iter().map(String::as_str))?;
                reporter.wrote(batch.items.len() as u64);
            }
            out.commit(false)?;
            reporter.committed();
            // A signal stops the run here, with the batch in hand committed.
            interrupt::check()
        })
    });
    let finished = result.and_then(|()| {
        out.commit(true)?;
        reporter.committed();
        Ok(())
    });
    reporter.finish("embedded", "images");
    finished?;
    Ok(Outcome::of_failures(reporter.failed_total()))
}
