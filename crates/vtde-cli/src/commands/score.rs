//! `vtde score PACKAGE PATHS... --labels ...`: zero-shot classification of image files.
//!
//! The label embeddings are computed once, before the images: with templates, each
//! label's embedding is the mean of its templated texts' normalized embeddings,
//! normalized again (CLIP's prompt ensembling: `Model::embed_labels`). Images flow
//! through the runtime's streaming pipeline (`Model::stream_image_files`); each scored
//! image gives one record: its
//! path and the probability of each label (softmax over the labels, as transformers'
//! `logits_per_image.softmax(1)`), or the top k. A file that cannot be read is reported
//! on stderr and in the errors file, and the run goes on.
//!
//! With `-o FILE`, results are appended batch by batch and `FILE.progress.json` commits
//! them ([`crate::formats::score_file`]), so `--resume` continues a killed run (or one
//! stopped by SIGINT or SIGTERM, which commits the batch in hand: [`crate::interrupt`]);
//! `vtde merge` joins the results of `--shard` runs. The outputs are locked for the run,
//! and none may be an input: an image, the labels file, a file of the package
//! ([`crate::formats::exclusive`]). An `-o` that is no regular file (`/dev/null`) is a
//! stream, like stdout: no marker, and an errors file only with `--errors`.

use anyhow::{bail, Context, Result};
use vtde_runtime::ndarray::{s, ArrayView2, Axis};
use vtde_runtime::Model;

use crate::args::ScoreArgs;
use crate::commands::test_batch_delay;
use crate::commands::{open_model, Outcome};
use crate::formats::exclusive::{is_special, Outputs};
use crate::formats::journal::RunInfo;
use crate::formats::score_file::{marker_path, ScoreOutput};
use crate::inputs::{failure_reason, Input};
use crate::interrupt;
use crate::progress::Reporter;
use crate::settings;

pub fn run(args: &ScoreArgs) -> Result<Outcome> {
    let settings = settings::Score::from_args(args)?;
    let recorded = &settings.recorded;
    // An output that is no regular file is a stream: no marker, and the errors file only
    // where --errors says.
    let stream = settings.output.as_deref().is_some_and(is_special);
    let errors = match (&args.output.errors, stream) {
        (None, true) => None,
        _ => settings.errors.clone(),
    };
    let mut outputs = Outputs::new();
    if settings.model_only {
        // Writes nothing.
    } else if let Some(output) = settings.output.as_deref().filter(|_| !stream) {
        outputs.add("the results file (-o)", output)?;
        outputs.add("its progress marker", &marker_path(output))?;
    }
    if let Some(e) = errors.as_deref().filter(|e| !is_special(e)) {
        outputs.add("the errors file", e)?;
    }
    if let Some(labels) = &args.labels_file {
        outputs.input("the labels file", labels)?;
    }
    outputs.package(&settings.package)?;

    let model = open_model(&settings.package, &settings.runtime)?;
    let label_embeds = model
        .embed_labels(&recorded.labels, &recorded.templates)
        .context("embedding the labels")?;
    let inputs = settings.inputs.collect();
    if settings.model_only {
        return model_only(&model, &inputs, label_embeds.view(), settings.batch_size);
    }
    outputs.inputs("an input image", inputs.iter().map(|i| i.path.as_path()))?;

    let run = RunInfo::new(
        "score",
        &settings.package,
        recorded,
        settings.inputs.recorded_roots(),
        settings.inputs.shard,
    )?;
    let records = recorded.records();
    // A signal while the model loaded: stop before the outputs are touched.
    interrupt::check()?;
    let (mut out, prior) = ScoreOutput::open(
        settings.output.as_deref(),
        errors.as_deref(),
        &records,
        run,
        settings.resume,
    )?;
    let todo: Vec<Input> = inputs
        .into_iter()
        .filter(|i| !prior.done.contains(&i.display()))
        .collect();
    let mut reporter = Reporter::new("score", todo.len() as u64);
    reporter.skipped = prior.records + prior.failed;
    reporter.failed_before = prior.failed;
    if let Some(shard) = settings.inputs.shard {
        reporter.note(&format!(
            "vtde score: shard {shard}: {} files to score",
            todo.len()
        ));
    }

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
                let scores = model
                    .score(embeddings.view(), label_embeds.view())
                    .context("scoring")?;
                for (&i, probs) in batch.items.iter().zip(scores.probs_per_image.rows()) {
                    let probs: Vec<f32> = probs.to_vec();
                    out.record(&records.record(&todo[i].display(), &probs));
                }
                reporter.wrote(batch.items.len() as u64);
            }
            out.commit(reporter.done_total(), reporter.failed_total(), false)?;
            reporter.committed();
            // A signal stops the run here, with the batch in hand committed.
            interrupt::check()
        })
    });
    // Each batch committed itself; the last commit marks the run complete.
    let finished = result.and_then(|()| {
        out.commit(reporter.done_total(), reporter.failed_total(), true)?;
        reporter.committed();
        Ok(())
    });
    reporter.finish("scored", "images");
    finished?;
    Ok(Outcome::of_failures(reporter.failed_total()))
}

/// Benchmark aid: the model and scoring alone, on the first batch's pixels, for as many
/// batches as the files need.
fn model_only(
    model: &Model,
    inputs: &[Input],
    label_embeds: ArrayView2<'_, f32>,
    batch_size: usize,
) -> Result<Outcome> {
    let first = &inputs[..batch_size.min(inputs.len())];
    let mut pixels = None;
    model.stream_image_files(first, |batch| -> Result<()> {
        pixels = Some(batch.into_pixel_values());
        Ok(())
    })?;
    let Some(pixels) = pixels.filter(|p| !p.is_empty()) else {
        bail!("--model-only needs readable images among the first {batch_size} files");
    };
    let mut reporter = Reporter::new("score --model-only", 0);
    let mut left = inputs.len();
    while left > 0 {
        interrupt::check()?;
        let n = left.min(pixels.len_of(Axis(0)));
        let embeds = model
            .embed_pixel_values(pixels.slice(s![..n, .., .., ..]))
            .context("embedding the images")?;
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
