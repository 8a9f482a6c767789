//! The projection head: `image_embeds = image_features·Wvᵀ`, `text_embeds =
//! text_features·Wtᵀ`, as one graph with two independent halves so that either side
//! may have zero rows. Outputs are not normalized (`get_image_features` /
//! `get_text_features`); the runtime normalizes.

use vtde_package::names;

use crate::checkpoint::Weights;
use crate::error::Result;
use crate::layers::{Linear, WeightScope};
use crate::onnx::proto::{DataType, ModelProto};
use crate::onnx::{Dim, GraphBuilder};

/// Sizes and weight names of a projection head.
#[derive(Debug, Clone)]
pub struct ProjectionConfig {
    pub vision_dim: usize,
    pub text_dim: usize,
    pub projection_dim: usize,
    /// Module of the image projection, e.g. `visual_projection`.
    pub visual_module: &'static str,
    /// Module of the text projection, e.g. `text_projection`.
    pub text_module: &'static str,
}

/// Builds `projection.onnx`.
pub fn build(c: &ProjectionConfig, weights: &Weights) -> Result<ModelProto> {
    let w = WeightScope::new(weights, "", &[]);
    let mut g = GraphBuilder::new("projection");
    let image = g.input(
        names::IMAGE_FEATURES,
        DataType::Float,
        &[Dim::Dynamic("images"), Dim::Fixed(c.vision_dim as i64)],
    );
    let text = g.input(
        names::TEXT_FEATURES,
        DataType::Float,
        &[Dim::Dynamic("texts"), Dim::Fixed(c.text_dim as i64)],
    );
    let visual = Linear::load(
        &mut g,
        &w,
        c.visual_module,
        c.vision_dim,
        c.projection_dim,
        false,
    )?;
    let textual = Linear::load(
        &mut g,
        &w,
        c.text_module,
        c.text_dim,
        c.projection_dim,
        false,
    )?;
    let image_embeds = visual.forward(&mut g, &image, c.vision_dim);
    let text_embeds = textual.forward(&mut g, &text, c.text_dim);
    let p = c.projection_dim as i64;
    g.output(
        &image_embeds,
        names::IMAGE_EMBEDS,
        DataType::Float,
        &[Dim::Dynamic("images"), Dim::Fixed(p)],
    );
    g.output(
        &text_embeds,
        names::TEXT_EMBEDS,
        DataType::Float,
        &[Dim::Dynamic("texts"), Dim::Fixed(p)],
    );
    Ok(g.finish(
        "vtde projection head: pooled features → embeddings (not normalized)",
        &[],
    ))
}
