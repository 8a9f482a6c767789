//! `vtde bench folder`: where the time of a folder run goes, on the user's own machine
//! and photos.
//!
//! One process opens the package once and measures, in each of `rounds` interleaved
//! rounds, over the same image files:
//!
//! - **end to end**: what `vtde score` does: the streaming pipeline (decoding pool,
//!   ordered batches), the vision and projection graphs, scores against two labels;
//! - **end to end, decoders at normal priority**: the same with
//!   [`ImageOptions::low_priority_decoding`](vtde_runtime::ImageOptions) off, so that the
//!   default's effect is measured, not assumed;
//! - **model only**: the first batch decoded once, then the graphs and scores run on it
//!   for as many images (what the model alone can do);
//! - **decode only**: the streaming pipeline alone, every image read, decoded and
//!   preprocessed on the decoding pool, no model.
//!
//! Decoding and the model run on the same cores, so end to end cannot beat the *shared
//! cores bound* `1 / (1/model + 1/decode)`: the rate if every core were busy all the time
//! with one or the other and nothing were lost to waiting. End to end against model only
//! says what decoding costs; against the bound, how well the two overlap. The machine's
//! speed drifts (shared machines by tens of percent over minutes), so ratios are the
//! medians of per-round ratios, each taken between neighbouring measurements.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vtde_runtime::ndarray::{concatenate, s, Array2, Array4, Axis};
use vtde_runtime::{ImageBatch, ImageSource, Model, RuntimeOptions};

/// What to measure.
#[derive(Debug, Clone)]
pub struct FolderBenchSettings {
    /// Package directory to measure.
    pub package: PathBuf,
    /// The image files, in order (a file that cannot be decoded fails in every round, as
    /// it would in a real run).
    pub images: Vec<PathBuf>,
    /// Rounds: in each, every measurement is made once, in turn.
    pub rounds: usize,
    /// How the package is opened and run, the images read (decoding threads, priority,
    /// EXIF, JPEG DCT scaling) and batched.
    pub runtime: RuntimeOptions,
}

/// The measurements of one round, images per second.
#[derive(Debug, Clone, Copy)]
struct Round {
    end_to_end: f64,
    normal_priority: f64,
    model_only: f64,
    decode_only: f64,
}

impl Round {
    fn bound(&self) -> f64 {
        1.0 / (1.0 / self.model_only + 1.0 / self.decode_only)
    }
}

/// Runs the folder benchmark and prints its table on stdout (progress on stderr).
pub fn run(args: &FolderBenchSettings) -> Result<()> {
    if args.rounds == 0 {
        bail!("rounds must be at least 1");
    }
    if args.images.is_empty() {
        bail!("no image files to measure");
    }
    let model = Model::open(&args.package, &args.runtime)
        .with_context(|| format!("opening package {}", args.package.display()))?;
    let labels = model
        .embed_texts(&["a photo", "a drawing"])
        .context("embedding the labels")?;
    let images = &args.images;
    let batch_size = args.runtime.batch_size.max(1);
    eprintln!(
        "vtde bench folder: {} images, batch {batch_size}, {} decoding threads, {}",
        images.len(),
        model.image_options().thread_count(),
        if model.shares_thread_pool() {
            "graphs on the shared thread pool"
        } else {
            "graphs on thread pools of their own"
        }
    );
    // A first pass reads every file (the page cache then holds them, as it would in
    // every round after this one) and finds the first batch for the model-only runs.
    let (first_batch, readable) = first_batch(&model, images)?;
    if readable == 0 {
        bail!("none of the {} image files could be decoded", images.len());
    }
    if readable < images.len() {
        eprintln!(
            "vtde bench folder: {} of {} files cannot be decoded; they stay in, failing \
             in every round as in a real run",
            images.len() - readable,
            images.len()
        );
    }

    let mut rounds = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let low = model
            .image_options()
            .clone()
            .with_low_priority_decoding(true);
        let normal = low.clone().with_low_priority_decoding(false);
        let measured = Round {
            end_to_end: end_to_end(&model, images, &labels, &low)?,
            model_only: model_only(&model, &first_batch, readable, &labels)?,
            decode_only: decode_only(&model, images)?,
            normal_priority: end_to_end(&model, images, &labels, &normal)?,
        };
        eprintln!(
            "vtde bench folder: round {}/{}: end to end {:.1}, normal priority {:.1}, \
             model only {:.1}, decode only {:.1} images/s",
            round + 1,
            args.rounds,
            measured.end_to_end,
            measured.normal_priority,
            measured.model_only,
            measured.decode_only
        );
        rounds.push(measured);
    }
    print_table(&rounds, readable, &model, batch_size);
    Ok(())
}

/// Streams every file once; returns the first full batch of decoded images (or all of
/// them, if fewer) and how many files decoded.
fn first_batch(model: &Model, images: &[PathBuf]) -> Result<(Array4<f32>, usize)> {
    let want = model.batch_size();
    let mut parts: Vec<Array4<f32>> = Vec::new();
    let (mut kept, mut readable) = (0, 0);
    model.stream_image_files(images, |batch: ImageBatch| -> Result<()> {
        readable += batch.items.len();
        let take = (want - kept).min(batch.items.len());
        if take > 0 {
            parts.push(
                batch
                    .pixel_values()
                    .slice(s![..take, .., .., ..])
                    .to_owned(),
            );
            kept += take;
        }
        Ok(())
    })?;
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let first = if views.is_empty() {
        Array4::zeros((0, 3, 1, 1))
    } else {
        concatenate(Axis(0), &views).context("joining decoded images")?
    };
    Ok((first, readable))
}

/// The vision and projection graphs on `pixels`, then scores: what a batch costs.
fn embed_and_score(
    model: &Model,
    pixels: vtde_runtime::ndarray::ArrayView4<'_, f32>,
    labels: &Array2<f32>,
) -> Result<()> {
    if pixels.shape()[0] == 0 {
        return Ok(());
    }
    let embeddings = model.embed_pixel_values(pixels)?;
    model.score(embeddings.view(), labels.view())?;
    Ok(())
}

fn end_to_end<S: ImageSource>(
    model: &Model,
    images: &[S],
    labels: &Array2<f32>,
    options: &vtde_runtime::ImageOptions,
) -> Result<f64> {
    let started = Instant::now();
    let mut done = 0usize;
    model.image_preprocessor().stream_files(
        images,
        options,
        model.batch_size(),
        |batch: ImageBatch| -> Result<()> {
            done += batch.items.len();
            embed_and_score(model, batch.pixel_values(), labels)
        },
    )?;
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

fn model_only(
    model: &Model,
    first: &Array4<f32>,
    images: usize,
    labels: &Array2<f32>,
) -> Result<f64> {
    let batch = first.shape()[0].max(1);
    let started = Instant::now();
    let mut left = images;
    while left > 0 {
        let n = left.min(batch);
        embed_and_score(model, first.slice(s![..n, .., .., ..]), labels)?;
        left -= n;
    }
    Ok(images as f64 / started.elapsed().as_secs_f64())
}

fn decode_only<S: ImageSource>(model: &Model, images: &[S]) -> Result<f64> {
    let started = Instant::now();
    let mut done = 0usize;
    model.stream_image_files(images, |batch: ImageBatch| -> Result<()> {
        done += batch.items.len();
        Ok(())
    })?;
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn print_table(rounds: &[Round], images: usize, model: &Model, batch_size: usize) {
    let of = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    println!(
        "{images} images, batch {batch_size}, {} decoding threads: images/s, median of {} \
         interleaved rounds",
        model.image_options().thread_count(),
        rounds.len()
    );
    println!(
        "  end to end                        {:>8.1}",
        of(|r| r.end_to_end)
    );
    println!(
        "  end to end, decoders at normal    {:>8.1}",
        of(|r| r.normal_priority)
    );
    println!(
        "  model only                        {:>8.1}",
        of(|r| r.model_only)
    );
    println!(
        "  decode only                       {:>8.1}",
        of(|r| r.decode_only)
    );
    println!(
        "  shared cores bound                {:>8.1}",
        of(Round::bound)
    );
    println!("ratios (median of per-round ratios):");
    println!(
        "  end to end / model only           {:>8.2}  (what decoding costs the run)",
        of(|r| r.end_to_end / r.model_only)
    );
    println!(
        "  end to end / shared cores bound   {:>8.2}  (how well decoding and model overlap)",
        of(|r| r.end_to_end / r.bound())
    );
    println!(
        "  low / normal decoding priority    {:>8.2}  (end to end, the default's gain)",
        of(|r| r.end_to_end / r.normal_priority)
    );
    println!(
        "  decode only / model only          {:>8.2}  (above 1: the model is the bottleneck)",
        of(|r| r.decode_only / r.model_only)
    );
}
