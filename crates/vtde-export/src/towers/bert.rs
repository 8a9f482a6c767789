//! BERT text tower (`model_type: bert`): word, absolute position and token-type
//! embeddings, post-norm encoder with a padding mask, and the tanh pooler on `[CLS]`.
//! Its graph maps `input_ids`, `attention_mask`, `token_type_ids` to the pooled output
//! (`text_outputs[1]`).

use vtde_runtime::manifest::names;

use crate::checkpoint::{ConfigView, Weights};
use crate::error::Result;
use crate::layers::{
    additive_padding_mask, Activation, Attention, AttentionNames, EncoderLayer, LayerNorm, Mlp,
    NormPlacement, Pooler, WeightScope,
};
use crate::onnx::proto::{DataType, ModelProto};
use crate::onnx::{Dim, GraphBuilder};

/// The fields of a `BertConfig` the graph depends on, with BertConfig's defaults.
#[derive(Debug, Clone)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f32,
    pub pad_token_id: usize,
}

impl BertConfig {
    pub fn from_config(cfg: &ConfigView) -> Result<Self> {
        let position_type = cfg.str_or("position_embedding_type", "absolute")?;
        if position_type != "absolute" {
            return Err(cfg.problem(
                "position_embedding_type",
                &format!("is `{position_type}`; vtde supports `absolute`"),
            ));
        }
        Ok(Self {
            vocab_size: cfg.usize_or("vocab_size", 30522)?,
            hidden_size: cfg.usize_or("hidden_size", 768)?,
            num_layers: cfg.usize_or("num_hidden_layers", 12)?,
            num_heads: cfg.usize_or("num_attention_heads", 12)?,
            intermediate_size: cfg.usize_or("intermediate_size", 3072)?,
            activation: super::activation(cfg, "hidden_act", "gelu")?,
            max_position_embeddings: cfg.usize_or("max_position_embeddings", 512)?,
            type_vocab_size: cfg.usize_or("type_vocab_size", 2)?,
            layer_norm_eps: cfg.f32_or("layer_norm_eps", 1e-12)?,
            pad_token_id: cfg.usize_or("pad_token_id", 0)?,
        })
    }

    /// The longest sequence the tower accepts, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_position_embeddings
    }
}

/// Builds `text.onnx` from the weights under `prefix` (e.g. `text_model.`).
pub fn build(c: &BertConfig, weights: &Weights, prefix: &str) -> Result<ModelProto> {
    let w = WeightScope::new(weights, prefix, &[]);
    let mut g = GraphBuilder::new("text");
    let h = c.hidden_size;
    let dims = [Dim::Dynamic("batch"), Dim::Dynamic("sequence")];
    let input_ids = g.input(names::INPUT_IDS, DataType::Int64, &dims);
    let attention_mask = g.input(names::ATTENTION_MASK, DataType::Int64, &dims);
    let token_type_ids = g.input(names::TOKEN_TYPE_IDS, DataType::Int64, &dims);

    let embeddings = g.scoped("embeddings", |g| -> Result<_> {
        let e = w.child("embeddings");
        let words = e.initializer(g, "word_embeddings.weight", &[c.vocab_size, h])?;
        let positions =
            e.initializer(g, "position_embeddings.weight", &[c.max_position_embeddings, h])?;
        let types = e.initializer(g, "token_type_embeddings.weight", &[c.type_vocab_size, h])?;
        let x = g.gather(&words, &input_ids, 0);
        let t = g.gather(&types, &token_type_ids, 0);
        let x = g.add(&x, &t);
        // Positions 0..seq: the first `seq` rows of the position table.
        let start = g.const_i64(&[1], &[0]);
        let seq = g.shape_slice(&input_ids, 1, 2);
        let pos = g.slice(&positions, &start, &seq, &[0]);
        let x = g.add(&x, &pos);
        Ok(LayerNorm::load(g, &e, "LayerNorm", h, c.layer_norm_eps)?.forward(g, &x))
    })?;

    let mask = g.scoped("mask", |g| additive_padding_mask(g, &attention_mask));
    let mut x = embeddings;
    for i in 0..c.num_layers {
        let layer = w.child(&format!("encoder.layer.{i}"));
        x = g.scoped(&format!("layers.{i}"), |g| -> Result<_> {
            let block = EncoderLayer {
                attention: Attention::load(
                    g,
                    &layer,
                    AttentionNames {
                        query: "attention.self.query",
                        key: "attention.self.key",
                        value: "attention.self.value",
                        output: "attention.output.dense",
                    },
                    h,
                    c.num_heads,
                    true,
                )?,
                mlp: Mlp::load(
                    g,
                    &layer,
                    ("intermediate.dense", "output.dense"),
                    h,
                    c.intermediate_size,
                    c.activation,
                )?,
                norm1: LayerNorm::load(g, &layer, "attention.output.LayerNorm", h, c.layer_norm_eps)?,
                norm2: LayerNorm::load(g, &layer, "output.LayerNorm", h, c.layer_norm_eps)?,
                placement: NormPlacement::Post,
            };
            Ok(block.forward(g, &x, Some(&mask)))
        })?;
    }

    let pooled = g.scoped("pooler", |g| -> Result<_> {
        Ok(Pooler::load(g, &w, "pooler.dense", h, h, Activation::Tanh)?.forward(g, &x))
    })?;
    g.output(
        &pooled,
        names::TEXT_FEATURES,
        DataType::Float,
        &[Dim::Dynamic("batch"), Dim::Fixed(h as i64)],
    );
    Ok(g.finish("vtde text tower (BERT): token ids → pooled output", &[]))
}
