//! `vtde warmup PACKAGE --provider tensorrt [--max-batch N]`: opens the package on its
//! providers and runs each graph once at the deployment's batch size, so that TensorRT
//! builds its engines and writes them to the engine cache now rather than at the first
//! start on the device; prints how long each step took. Useful with any provider: the
//! second run shows the cached start-up.

use std::time::Instant;

use anyhow::{Context, Result};
use vtde_runtime::ndarray::{Array2, Array4};
use vtde_runtime::TextBatch;

use crate::args::WarmupArgs;
use crate::commands::open_model;
use crate::settings;

pub fn run(args: &WarmupArgs) -> Result<()> {
    let settings = settings::Warmup::from_args(args);
    let started = Instant::now();
    let model = open_model(&settings.package, &settings.runtime)?;
    let opened = started.elapsed();
    let m = model.manifest();
    let batch = settings.batch_size;
    let (h, w) = (m.image.height as usize, m.image.width as usize);

    let run_started = Instant::now();
    let pixels = Array4::<f32>::zeros((batch, 3, h, w));
    let features = model
        .image_features(pixels.view())
        .context("running the vision graph")?;
    // The longest text the tower takes, all padding but the first token: every text
    // shape of the profile is within it.
    let seq = m.text.max_length;
    let mut mask = Array2::<i64>::zeros((batch, seq));
    mask.column_mut(0).fill(1);
    let tokens = TextBatch {
        input_ids: Array2::from_elem((batch, seq), m.text.pad_token_id),
        attention_mask: mask,
        token_type_ids: Array2::zeros((batch, seq)),
    };
    let text = model
        .text_features(&tokens)
        .context("running the text graph")?;
    model
        .project(features.view(), text.view())
        .context("running the projection graph")?;
    let ran = run_started.elapsed();

    for placement in model.placements() {
        println!("{}: {}", placement.graph, placement.provider);
    }
    println!(
        "opened in {:.2}s (engines built or loaded), first run of the three graphs at batch \
         {batch} in {:.2}s",
        opened.as_secs_f64(),
        ran.as_secs_f64()
    );
    Ok(())
}
