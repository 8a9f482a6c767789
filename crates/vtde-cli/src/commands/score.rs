//! `vtde score PACKAGE PATHS... --labels ...`: zero-shot classification of image files.
//!
//! The labels are embedded once. Images are decoded in batches; a file that cannot be
//! read or decoded is reported on stderr (path and reason) and skipped, and the run goes
//! on. Each scored image gives one CSV row on stdout: its path, then the probability of
//! each label (softmax over the labels, as transformers' `logits_per_image.softmax(1)`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use vtde_runtime::load_image;

use crate::args::ScoreArgs;
use crate::inputs::collect_images;
use crate::Outcome;

pub fn run(args: &ScoreArgs) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let model = crate::commands::open_model(&args.package, &args.runtime)?;
    let label_embeds = model
        .embed_texts(&args.labels)
        .context("embedding the labels")?;

    let (files, walk_errors) = collect_images(&args.images);
    let mut failed = walk_errors.len();
    for e in &walk_errors {
        eprintln!("vtde: skipping {}: {}", e.path.display(), e.reason);
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write_header(&mut out, &args.labels)?;
    let mut scored = 0usize;
    for chunk in files.chunks(args.batch_size as usize) {
        let (paths, images) = decode_batch(chunk, &mut failed);
        if images.is_empty() {
            continue;
        }
        let image_embeds = model.embed_images(&images).context("embedding images")?;
        let scores = model
            .score(image_embeds.view(), label_embeds.view())
            .context("scoring")?;
        for (path, probs) in paths.iter().zip(scores.probs_per_image.rows()) {
            write_row(&mut out, &path.display().to_string(), probs.iter().copied())?;
        }
        scored += paths.len();
        out.flush().context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    eprintln!(
        "vtde score: {scored} scored, {failed} failed, {:.2}s",
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 {
        Outcome::AllGood
    } else {
        Outcome::SomeInputsFailed
    })
}

/// Decodes a batch of files; failures are reported and counted, never fatal.
fn decode_batch(
    paths: &[PathBuf],
    failed: &mut usize,
) -> (Vec<PathBuf>, Vec<vtde_runtime::image::DynamicImage>) {
    let mut ok_paths = Vec::with_capacity(paths.len());
    let mut images = Vec::with_capacity(paths.len());
    for path in paths {
        match load_image(path) {
            Ok(image) => {
                ok_paths.push(path.clone());
                images.push(image);
            }
            Err(e) => {
                eprintln!("vtde: skipping: {e}");
                *failed += 1;
            }
        }
    }
    (ok_paths, images)
}

fn write_header(out: &mut impl Write, labels: &[String]) -> Result<()> {
    let mut line = String::from("path");
    for label in labels {
        line.push(',');
        line.push_str(&csv_field(label));
    }
    writeln!(out, "{line}").context("writing to stdout")
}

fn write_row(out: &mut impl Write, path: &str, probs: impl Iterator<Item = f32>) -> Result<()> {
    let mut line = csv_field(path);
    for p in probs {
        line.push_str(&format!(",{p:.6}"));
    }
    writeln!(out, "{line}").context("writing to stdout")
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("a cat"), "a cat");
        assert_eq!(csv_field("cat, dog"), "\"cat, dog\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
