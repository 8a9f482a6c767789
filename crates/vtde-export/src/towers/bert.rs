//! The BERT family of text towers: BERT (`bert`), RoBERTa (`roberta`) and XLM-RoBERTa
//! (`xlm-roberta`): word, position and token-type embeddings, a post-norm encoder with a
//! padding mask, and the tanh pooler on the first token.
//!
//! They differ in parameters only:
//! - positions: BERT counts from 0; RoBERTa counts non-padding tokens from
//!   `pad_token_id + 1` and gives padding the position `pad_token_id`
//!   (`create_position_ids_from_input_ids`);
//! - token types: BERT's tokenizer returns `token_type_ids`, so its graph takes them;
//!   RoBERTa's does not, and transformers then uses type 0 everywhere.
//!
//! The graph maps the token inputs to the pooled output (`text_outputs[1]`).

use vtde_package::names;

use crate::checkpoint::{ConfigView, Weights};
use crate::error::Result;
use crate::layers::{
    additive_padding_mask, Activation, AttentionNames, EncoderLayer, LayerNames, LayerNorm,
    LayerShape, NormPlacement, Pooler, WeightScope,
};
use crate::onnx::builder::Precision;
use crate::onnx::proto::DataType;
use crate::onnx::proto::ModelProto;
use crate::onnx::{Dim, GraphBuilder};

/// Module names inside `encoder.layer.N`.
const LAYER_NAMES: LayerNames = LayerNames {
    attention: AttentionNames {
        query: "attention.self.query",
        key: "attention.self.key",
        value: "attention.self.value",
        output: "attention.output.dense",
    },
    fc1: "intermediate.dense",
    fc2: "output.dense",
    norm1: "attention.output.LayerNorm",
    norm2: "output.LayerNorm",
};

/// Which member of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Bert,
    /// RoBERTa and XLM-RoBERTa (same graph; they differ in tokenizer only).
    Roberta,
}

/// The fields of a BERT-family config the graph depends on.
#[derive(Debug, Clone)]
pub struct BertConfig {
    pub variant: Variant,
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
    pub fn from_config(cfg: &ConfigView, variant: Variant) -> Result<Self> {
        let position_type = cfg.str_or("position_embedding_type", "absolute")?;
        if position_type != "absolute" {
            return Err(cfg.problem(
                "position_embedding_type",
                &format!("is `{position_type}`; vtde supports `absolute`"),
            ));
        }
        let (default_types, default_pad) = match variant {
            Variant::Bert => (2, 0),
            Variant::Roberta => (1, 1),
        };
        let c = Self {
            variant,
            vocab_size: cfg.usize_or("vocab_size", 30522)?,
            hidden_size: cfg.usize_or("hidden_size", 768)?,
            num_layers: cfg.usize_or("num_hidden_layers", 12)?,
            num_heads: cfg.usize_or("num_attention_heads", 12)?,
            intermediate_size: cfg.usize_or("intermediate_size", 3072)?,
            activation: super::activation(cfg, "hidden_act", "gelu")?,
            max_position_embeddings: cfg.usize_or("max_position_embeddings", 512)?,
            type_vocab_size: cfg.usize_or("type_vocab_size", default_types)?,
            layer_norm_eps: cfg.eps_or("layer_norm_eps", 1e-12)?,
            pad_token_id: cfg.usize_or("pad_token_id", default_pad)?,
        };
        if c.max_length() == 0 {
            return Err(cfg.problem(
                "max_position_embeddings",
                "leaves no room for tokens after the padding offset",
            ));
        }
        Ok(c)
    }

    fn layer_shape(&self) -> LayerShape {
        LayerShape {
            hidden: self.hidden_size,
            heads: self.num_heads,
            intermediate: self.intermediate_size,
            activation: self.activation,
            layer_norm_eps: self.layer_norm_eps,
            qkv_bias: [true; 3],
            placement: NormPlacement::Post,
        }
    }

    /// The longest sequence the tower accepts, special tokens included.
    pub fn max_length(&self) -> usize {
        match self.variant {
            Variant::Bert => self.max_position_embeddings,
            // Positions start after the padding index.
            Variant::Roberta => self
                .max_position_embeddings
                .saturating_sub(self.pad_token_id + 1),
        }
    }

    /// Whether the graph takes `token_type_ids`.
    pub fn takes_token_type_ids(&self) -> bool {
        self.variant == Variant::Bert
    }
}

/// Builds `text.onnx` from the weights under `prefix` (e.g. `text_model.`).
pub fn build(
    c: &BertConfig,
    weights: &Weights,
    prefix: &str,
    precision: Precision,
) -> Result<ModelProto> {
    let w = WeightScope::new(weights, prefix, &[]);
    let mut g = GraphBuilder::with_precision("text", precision);
    let h = c.hidden_size;
    let dims = [Dim::Dynamic("batch"), Dim::Dynamic("sequence")];
    let input_ids = g.input(names::INPUT_IDS, DataType::Int64, &dims);
    let attention_mask = g.input(names::ATTENTION_MASK, DataType::Int64, &dims);
    let token_type_ids = c
        .takes_token_type_ids()
        .then(|| g.input(names::TOKEN_TYPE_IDS, DataType::Int64, &dims));

    let embeddings = g.scoped("embeddings", |g| -> Result<_> {
        let e = w.child("embeddings");
        let words = e.initializer(g, "word_embeddings.weight", &[c.vocab_size, h])?;
        let positions = e.initializer(
            g,
            "position_embeddings.weight",
            &[c.max_position_embeddings, h],
        )?;
        let types = e.initializer(g, "token_type_embeddings.weight", &[c.type_vocab_size, h])?;
        let x = g.gather(&words, &input_ids, 0);
        let type_embedding = match &token_type_ids {
            Some(ids) => g.gather(&types, ids, 0),
            None => {
                let zero = g.const_i64(&[], &[0]);
                g.gather(&types, &zero, 0) // row 0, broadcast over every token
            }
        };
        let x = g.add(&x, &type_embedding);
        let position_embedding = match c.variant {
            Variant::Bert => {
                // Positions 0..seq: the first `seq` rows of the table.
                let start = g.const_i64(&[1], &[0]);
                let seq = g.shape_slice(&input_ids, 1, 2);
                g.slice(&positions, &start, &seq, &[0])
            }
            Variant::Roberta => {
                // cumsum(is_token) · is_token + pad: tokens count from pad + 1.
                let pad = g.const_i64(&[], &[c.pad_token_id as i64]);
                let is_pad = g.node("Equal", &[&input_ids, &pad], vec![]);
                let is_token = g.unary("Not", &is_pad);
                let is_token = g.cast(&is_token, DataType::Int64);
                let count = g.cumsum(&is_token, 1);
                let count = g.mul(&count, &is_token);
                let ids = g.add(&count, &pad);
                g.gather(&positions, &ids, 0)
            }
        };
        let x = g.add(&x, &position_embedding);
        Ok(LayerNorm::load(g, &e, "LayerNorm", h, c.layer_norm_eps)?.forward(g, &x))
    })?;

    let mask = g.scoped("mask", |g| additive_padding_mask(g, &attention_mask));
    let mut x = embeddings;
    for i in 0..c.num_layers {
        let layer = w.child(&format!("encoder.layer.{i}"));
        x = g.scoped(&format!("layers.{i}"), |g| -> Result<_> {
            let block = EncoderLayer::load(g, &layer, &LAYER_NAMES, &c.layer_shape(), None)?;
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
    let doc = match c.variant {
        Variant::Bert => "vtde text tower (BERT): token ids → pooled output",
        Variant::Roberta => "vtde text tower (RoBERTa): token ids → pooled output",
    };
    Ok(g.finish(doc, &[]))
}
