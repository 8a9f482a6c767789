//! ViT vision tower (`model_type: vit`): patch embedding, class token, learned
//! positions, pre-norm encoder, final layer norm, and the tanh pooler on the class token.
//! Its graph maps `pixel_values` to the pooled output (`vision_outputs[1]`).

use vtde_runtime::manifest::names;

use crate::checkpoint::{ConfigView, Weights};
use crate::error::Result;
use crate::layers::{
    Activation, Attention, AttentionNames, EncoderLayer, LayerNorm, Mlp, NormPlacement, Pooler,
    WeightScope,
};
use crate::onnx::proto::{DataType, ModelProto};
use crate::onnx::{Dim, GraphBuilder};

/// Legacy module names (most published checkpoints) → transformers 5 names.
const RENAMES: &[(&str, &str)] = &[
    ("encoder.layer.", "layers."),
    ("attention.attention.query", "attention.q_proj"),
    ("attention.attention.key", "attention.k_proj"),
    ("attention.attention.value", "attention.v_proj"),
    ("attention.output.dense", "attention.o_proj"),
    ("intermediate.dense", "mlp.fc1"),
    ("output.dense", "mlp.fc2"),
];

/// The fields of a `ViTConfig` the graph depends on, with ViTConfig's defaults.
#[derive(Debug, Clone)]
pub struct VitConfig {
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub layer_norm_eps: f32,
    pub qkv_bias: bool,
    pub pooler_output_size: usize,
    pub pooler_activation: Activation,
}

impl VitConfig {
    pub fn from_config(cfg: &ConfigView) -> Result<Self> {
        let hidden_size = cfg.usize_or("hidden_size", 768)?;
        let image_size = cfg.square_or("image_size", 224)?;
        let patch_size = cfg.square_or("patch_size", 16)?;
        if patch_size == 0 || image_size % patch_size != 0 {
            return Err(cfg.problem(
                "image_size",
                &format!("({image_size}) is not a multiple of patch_size ({patch_size})"),
            ));
        }
        Ok(Self {
            image_size,
            patch_size,
            num_channels: cfg.usize_or("num_channels", 3)?,
            hidden_size,
            num_layers: cfg.usize_or("num_hidden_layers", 12)?,
            num_heads: cfg.usize_or("num_attention_heads", 12)?,
            intermediate_size: cfg.usize_or("intermediate_size", 3072)?,
            activation: super::activation(cfg, "hidden_act", "gelu")?,
            layer_norm_eps: cfg.f32_or("layer_norm_eps", 1e-12)?,
            qkv_bias: cfg.bool_or("qkv_bias", true)?,
            pooler_output_size: cfg.opt_usize("pooler_output_size")?.unwrap_or(hidden_size),
            pooler_activation: super::activation(cfg, "pooler_act", "tanh")?,
        })
    }

    /// Number of patches plus the class token.
    pub fn num_positions(&self) -> usize {
        (self.image_size / self.patch_size).pow(2) + 1
    }
}

/// Builds `vision.onnx` from the weights under `prefix` (e.g. `vision_model.`).
pub fn build(c: &VitConfig, weights: &Weights, prefix: &str) -> Result<ModelProto> {
    let w = WeightScope::new(weights, prefix, RENAMES);
    let mut g = GraphBuilder::new("vision");
    let (h, p, s) = (c.hidden_size, c.patch_size, c.image_size);
    let pixels = g.input(
        names::PIXEL_VALUES,
        DataType::Float,
        &[
            Dim::Dynamic("batch"),
            Dim::Fixed(c.num_channels as i64),
            Dim::Fixed(s as i64),
            Dim::Fixed(s as i64),
        ],
    );

    let embeddings = g.scoped("embeddings", |g| -> Result<_> {
        let e = w.child("embeddings");
        let patch = e.child("patch_embeddings.projection");
        let kernel = patch.initializer(g, "weight", &[h, c.num_channels, p, p])?;
        let bias = patch.initializer(g, "bias", &[h])?;
        let x = g.conv2d(&pixels, &kernel, &bias, [p as i64; 2], [p as i64; 2]);
        let x = g.reshape(&x, &[0, h as i64, -1]);
        let patches = g.transpose(&x, &[0, 2, 1]); // [batch, patches, hidden]
        let cls = e.initializer(g, "cls_token", &[h])?;
        let cls = g.reshape(&cls, &[1, 1, h as i64]);
        let batch = g.shape_slice(&pixels, 0, 1);
        let rest = g.const_i64(&[2], &[1, h as i64]);
        let cls_shape = g.concat(&[&batch, &rest], 0);
        let cls = g.expand(&cls, &cls_shape);
        let tokens = g.concat(&[&cls, &patches], 1);
        let positions = e.initializer(g, "position_embeddings", &[c.num_positions(), h])?;
        Ok(g.add(&tokens, &positions))
    })?;

    let mut x = embeddings;
    for i in 0..c.num_layers {
        let layer = w.child(&format!("encoder.layer.{i}"));
        x = g.scoped(&format!("layers.{i}"), |g| -> Result<_> {
            let block = EncoderLayer {
                attention: Attention::load(
                    g,
                    &layer,
                    AttentionNames {
                        query: "attention.attention.query",
                        key: "attention.attention.key",
                        value: "attention.attention.value",
                        output: "attention.output.dense",
                    },
                    h,
                    c.num_heads,
                    c.qkv_bias,
                )?,
                mlp: Mlp::load(
                    g,
                    &layer,
                    ("intermediate.dense", "output.dense"),
                    h,
                    c.intermediate_size,
                    c.activation,
                )?,
                norm1: LayerNorm::load(g, &layer, "layernorm_before", h, c.layer_norm_eps)?,
                norm2: LayerNorm::load(g, &layer, "layernorm_after", h, c.layer_norm_eps)?,
                placement: NormPlacement::Pre,
            };
            Ok(block.forward(g, &x, None))
        })?;
    }

    let pooled = g.scoped("pooler", |g| -> Result<_> {
        let sequence = LayerNorm::load(g, &w, "layernorm", h, c.layer_norm_eps)?.forward(g, &x);
        let pooler = Pooler::load(
            g,
            &w,
            "pooler.dense",
            h,
            c.pooler_output_size,
            c.pooler_activation,
        )?;
        Ok(pooler.forward(g, &sequence))
    })?;
    g.output(
        &pooled,
        names::IMAGE_FEATURES,
        DataType::Float,
        &[Dim::Dynamic("batch"), Dim::Fixed(c.pooler_output_size as i64)],
    );
    Ok(g.finish("vtde vision tower (ViT): pixel_values → pooled output", &[]))
}
