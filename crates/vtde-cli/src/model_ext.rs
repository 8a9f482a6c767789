//! What the CLI needs from a [`Model`] that the runtime library does not offer yet:
//! streaming image files through the decoding pool into embeddings, and the label
//! embeddings of zero-shot scoring (with prompt templates).
//!
//! These are about to move into `vtde-runtime` (`Model::stream_image_files`,
//! `Model::embed_labels`); until then they live here, and the commands reach them only
//! through this module, so that the switch touches one place. [`crate::pipeline`] is
//! used by nothing else.

use anyhow::{Context, Result};
use vtde_runtime::ndarray::{s, Array2, ArrayView4, Axis};
use vtde_runtime::similarity::l2_normalize;
use vtde_runtime::Model;

use crate::inputs::Input;
use crate::pipeline::{self, PipelineOptions};

/// One batch of [`stream_image_files`], in input order.
pub struct EmbeddedBatch {
    /// Indices (into the inputs) of the images embedded, in order.
    pub items: Vec<usize>,
    /// Indices of the inputs that failed, and why, in order.
    pub failures: Vec<(usize, String)>,
    /// The embeddings of `items`, one row each, L2-normalized (`[0, P]` when none).
    pub embeddings: Array2<f32>,
}

/// Reads, decodes and preprocesses `inputs` on the decoding pool, embeds each batch of
/// the good ones, and calls `consume` with each batch, in input order. A file that
/// cannot be read is a failure of that input; an error of the model or of `consume`
/// stops the stream.
pub fn stream_image_files(
    model: &Model,
    inputs: &[Input],
    options: PipelineOptions,
    mut consume: impl FnMut(EmbeddedBatch) -> Result<()>,
) -> Result<()> {
    let dim = model.manifest().projection_dim;
    pipeline::run(
        inputs,
        model.image_preprocessor(),
        model.image_options(),
        options,
        |batch| {
            let embeddings = if batch.items.is_empty() {
                Array2::zeros((0, dim))
            } else {
                embed_pixels(model, batch.pixels())?
            };
            consume(EmbeddedBatch {
                items: batch.items,
                failures: batch.failures,
                embeddings,
            })
        },
    )
}

/// `pixel_values` → projected, L2-normalized image embeddings (what
/// [`Model::embed_images`] does after preprocessing), in one run of the vision graph.
pub fn embed_pixels(model: &Model, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
    let features = model
        .image_features(pixels)
        .context("running the vision graph")?;
    let no_text = Array2::<f32>::zeros((0, model.manifest().graphs.text.output_dim));
    let (embeds, _) = model
        .project(features.view(), no_text.view())
        .context("running the projection graph")?;
    Ok(l2_normalize(embeds.view()))
}

/// The labels' text embeddings, `[labels, P]`, L2-normalized. With templates: the mean
/// of each label's normalized templated embeddings, normalized again (CLIP's prompt
/// ensembling).
pub fn embed_labels(model: &Model, labels: &[String], templates: &[String]) -> Result<Array2<f32>> {
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
