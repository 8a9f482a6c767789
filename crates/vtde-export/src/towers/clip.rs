//! CLIP's towers (`clip_vision_model`, `clip_text_model`), used by `CLIPModel` and inside
//! `VisionTextDualEncoderModel`.
//!
//! - Vision: patch embedding without bias, class embedding, learned positions, a
//!   pre-layernorm (`pre_layrnorm`, sic), a pre-norm encoder, and the pooled output
//!   `post_layernorm(x[:, 0])`.
//! - Text: token and position embeddings, a pre-norm encoder under a causal mask combined
//!   with the padding mask, `final_layer_norm`, pooled at the end-of-text token: the first
//!   position holding `eos_token_id`, or, for legacy configs whose `eos_token_id` is 2,
//!   the position of the largest id (transformers' `argmax(input_ids)` rule).

use vtde_package::names;

use crate::checkpoint::{ConfigView, Weights};
use crate::error::Result;
use crate::layers::{
    additive_padding_mask, first_token, patch_embedding, pixel_input, prepend_tokens, Activation,
    AttentionNames, EncoderLayer, LayerNames, LayerNorm, LayerShape, NormPlacement, WeightScope,
};
use crate::onnx::builder::Precision;
use crate::onnx::proto::{DataType, ModelProto};
use crate::onnx::{Dim, GraphBuilder, Value};

/// Module names inside `encoder.layers.N`.
const LAYER_NAMES: LayerNames = LayerNames {
    attention: AttentionNames {
        query: "self_attn.q_proj",
        key: "self_attn.k_proj",
        value: "self_attn.v_proj",
        output: "self_attn.out_proj",
    },
    fc1: "mlp.fc1",
    fc2: "mlp.fc2",
    norm1: "layer_norm1",
    norm2: "layer_norm2",
};

/// What CLIP's vision and text encoders share.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub layer_norm_eps: f32,
}

impl EncoderConfig {
    fn from_config(cfg: &ConfigView, defaults: [usize; 4]) -> Result<Self> {
        let [hidden, layers, heads, intermediate] = defaults;
        Ok(Self {
            hidden_size: cfg.usize_or("hidden_size", hidden)?,
            num_layers: cfg.usize_or("num_hidden_layers", layers)?,
            num_heads: cfg.usize_or("num_attention_heads", heads)?,
            intermediate_size: cfg.usize_or("intermediate_size", intermediate)?,
            activation: super::activation(cfg, "hidden_act", "quick_gelu")?,
            layer_norm_eps: cfg.eps_or("layer_norm_eps", 1e-5)?,
        })
    }

    fn layer_shape(&self) -> LayerShape {
        LayerShape {
            hidden: self.hidden_size,
            heads: self.num_heads,
            intermediate: self.intermediate_size,
            activation: self.activation,
            layer_norm_eps: self.layer_norm_eps,
            qkv_bias: [true; 3],
            placement: NormPlacement::Pre,
        }
    }

    /// Emits the encoder layers under `encoder.layers.N`.
    fn forward(
        &self,
        g: &mut GraphBuilder,
        w: &WeightScope,
        mut x: Value,
        mask: Option<&Value>,
    ) -> Result<Value> {
        for i in 0..self.num_layers {
            let layer = w.child(&format!("encoder.layers.{i}"));
            x = g.scoped(&format!("layers.{i}"), |g| -> Result<_> {
                let block = EncoderLayer::load(g, &layer, &LAYER_NAMES, &self.layer_shape(), None)?;
                Ok(block.forward(g, &x, mask))
            })?;
        }
        Ok(x)
    }
}

/// A `CLIPVisionConfig`.
#[derive(Debug, Clone)]
pub struct ClipVisionConfig {
    pub encoder: EncoderConfig,
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
}

impl ClipVisionConfig {
    pub fn from_config(cfg: &ConfigView) -> Result<Self> {
        let image_size = cfg.square_or("image_size", 224)?;
        let patch_size = cfg.square_or("patch_size", 32)?;
        if patch_size == 0 || image_size % patch_size != 0 {
            return Err(cfg.problem(
                "image_size",
                &format!("({image_size}) is not a multiple of patch_size ({patch_size})"),
            ));
        }
        Ok(Self {
            encoder: EncoderConfig::from_config(cfg, [768, 12, 12, 3072])?,
            image_size,
            patch_size,
            num_channels: cfg.usize_or("num_channels", 3)?,
        })
    }

    fn num_positions(&self) -> usize {
        (self.image_size / self.patch_size).pow(2) + 1
    }
}

/// Builds `vision.onnx` for a CLIP vision tower saved under `prefix`, or under
/// `{prefix}vision_model.` as transformers 4 saved it inside a dual encoder.
pub fn build_vision(
    c: &ClipVisionConfig,
    weights: &Weights,
    prefix: &str,
    precision: Precision,
) -> Result<ModelProto> {
    let w =
        WeightScope::new(weights, prefix, &[]).with_alt_prefix(&format!("{prefix}vision_model."));
    let mut g = GraphBuilder::with_precision("vision", precision);
    let (h, p) = (c.encoder.hidden_size, c.patch_size);
    let pixels = pixel_input(&mut g, c.num_channels, c.image_size);
    let embeddings = g.scoped("embeddings", |g| -> Result<_> {
        let e = w.child("embeddings");
        let kernel = e.initializer(g, "patch_embedding.weight", &[h, c.num_channels, p, p])?;
        let patches = patch_embedding(g, &pixels, &kernel, None, h, p);
        let class = e.initializer(g, "class_embedding", &[h])?;
        let tokens = prepend_tokens(g, &pixels, &[class], patches, h);
        let positions = e.initializer(g, "position_embedding.weight", &[c.num_positions(), h])?;
        let x = g.add(&tokens, &positions);
        Ok(LayerNorm::load(g, &w, "pre_layrnorm", h, c.encoder.layer_norm_eps)?.forward(g, &x))
    })?;
    let x = c.encoder.forward(&mut g, &w, embeddings, None)?;
    let pooled = g.scoped("pooler", |g| -> Result<_> {
        let cls = first_token(g, &x);
        Ok(LayerNorm::load(g, &w, "post_layernorm", h, c.encoder.layer_norm_eps)?.forward(g, &cls))
    })?;
    g.output(
        &pooled,
        names::IMAGE_FEATURES,
        DataType::Float,
        &[Dim::Dynamic("batch"), Dim::Fixed(h as i64)],
    );
    Ok(g.finish(
        "vtde vision tower (CLIP): pixel_values → pooled output",
        &[],
    ))
}

/// A `CLIPTextConfig`.
#[derive(Debug, Clone)]
pub struct ClipTextConfig {
    pub encoder: EncoderConfig,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub eos_token_id: i64,
    pub pad_token_id: usize,
}

impl ClipTextConfig {
    pub fn from_config(cfg: &ConfigView) -> Result<Self> {
        Ok(Self {
            encoder: EncoderConfig::from_config(cfg, [512, 12, 8, 2048])?,
            vocab_size: cfg.usize_or("vocab_size", 49408)?,
            max_position_embeddings: cfg.usize_or("max_position_embeddings", 77)?,
            eos_token_id: cfg.usize_or("eos_token_id", 49407)? as i64,
            pad_token_id: cfg.usize_or("pad_token_id", 1)?,
        })
    }

    /// transformers' legacy rule: configs from before its PR #24773 say `eos_token_id: 2`
    /// and are pooled at the largest token id.
    pub fn pools_at_argmax(&self) -> bool {
        self.eos_token_id == 2
    }
}

/// Builds `text.onnx` for a CLIP text tower saved under `prefix` (or
/// `{prefix}text_model.`, as transformers 4 saved it inside a dual encoder).
pub fn build_text(
    c: &ClipTextConfig,
    weights: &Weights,
    prefix: &str,
    precision: Precision,
) -> Result<ModelProto> {
    let w = WeightScope::new(weights, prefix, &[]).with_alt_prefix(&format!("{prefix}text_model."));
    let mut g = GraphBuilder::with_precision("text", precision);
    let h = c.encoder.hidden_size;
    let p = c.max_position_embeddings;
    let dims = [Dim::Dynamic("batch"), Dim::Dynamic("sequence")];
    let input_ids = g.input(names::INPUT_IDS, DataType::Int64, &dims);
    let attention_mask = g.input(names::ATTENTION_MASK, DataType::Int64, &dims);

    let seq = g.shape_slice(&input_ids, 1, 2);
    let start = g.const_i64(&[1], &[0]);
    let embeddings = g.scoped("embeddings", |g| -> Result<_> {
        let e = w.child("embeddings");
        let tokens = e.initializer(g, "token_embedding.weight", &[c.vocab_size, h])?;
        let positions = e.initializer(g, "position_embedding.weight", &[p, h])?;
        let x = g.gather(&tokens, &input_ids, 0);
        let pos = g.slice(&positions, &start, &seq, &[0]);
        Ok(g.add(&x, &pos))
    })?;

    let mask = g.scoped("mask", |g| {
        // Causal part: a constant [p, p] table cut to [seq, seq]; lowest f32 above the
        // diagonal. Combined with the padding mask by Min, so that masked entries stay
        // finite (adding two lowest values would give -inf).
        let mut causal = vec![0f32; p * p];
        for i in 0..p {
            for j in (i + 1)..p {
                causal[i * p + j] = f32::MIN;
            }
        }
        let causal = g.const_f32(&[p, p], &causal);
        let causal = g.slice(&causal, &start, &seq, &[0]);
        let causal = g.slice(&causal, &start, &seq, &[1]);
        let padding = additive_padding_mask(g, &attention_mask);
        g.node("Min", &[&causal, &padding], vec![])
    });
    let x = c.encoder.forward(&mut g, &w, embeddings, Some(&mask))?;

    let pooled = g.scoped("pooler", |g| -> Result<_> {
        let x =
            LayerNorm::load(g, &w, "final_layer_norm", h, c.encoder.layer_norm_eps)?.forward(g, &x);
        // Index of the pooled token per row; ArgMax takes the first maximum, as torch does.
        let key = if c.pools_at_argmax() {
            g.cast(&input_ids, DataType::Int32)
        } else {
            let eos = g.const_i64(&[], &[c.eos_token_id]);
            let is_eos = g.node("Equal", &[&input_ids, &eos], vec![]);
            g.cast(&is_eos, DataType::Int32)
        };
        let index = g.argmax(&key, 1); // [batch]
        let index = g.reshape(&index, &[-1, 1, 1]);
        let batch = g.shape_slice(&input_ids, 0, 1);
        let rest = g.const_i64(&[2], &[1, h as i64]);
        let shape = g.concat(&[&batch, &rest], 0);
        let index = g.expand(&index, &shape); // [batch, 1, hidden]
        let picked = g.gather_elements(&x, &index, 1);
        Ok(g.squeeze(&picked, &[1]))
    })?;
    g.output(
        &pooled,
        names::TEXT_FEATURES,
        DataType::Float,
        &[Dim::Dynamic("batch"), Dim::Fixed(h as i64)],
    );
    Ok(g.finish(
        "vtde text tower (CLIP): token ids → pooled output at end of text",
        &[],
    ))
}
