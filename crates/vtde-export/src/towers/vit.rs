//! The ViT family of vision towers: ViT (`vit`), DeiT (`deit`) and BEiT (`beit`).
//!
//! All three are a patch embedding, prefix tokens, a pre-norm encoder and a pooler. They
//! differ in parameters only:
//! - prefix tokens: ViT and BEiT have a class token, DeiT a class and a distillation token;
//! - positions: learned absolute embeddings (ViT, DeiT; optional in BEiT) and/or BEiT's
//!   relative position bias tables (per layer or shared), baked into constant attention
//!   biases at export time since the image size is fixed;
//! - BEiT's key projection has no bias, and its layers scale both branches (`lambda_1`,
//!   `lambda_2`);
//! - pooling: ViT and DeiT put a dense+tanh pooler on the class token after the final
//!   layer norm; BEiT either layer-norms the mean of the patch tokens
//!   (`use_mean_pooling`) or takes the layer-normed class token.
//!
//! The graph maps `pixel_values` to the pooled output (`vision_outputs[1]`).

use vtde_package::names;

use crate::checkpoint::{ConfigView, Tensor, Weights};
use crate::error::Result;
use crate::layers::{
    first_token, patch_embedding, pixel_input, prepend_tokens, Activation, AttentionNames,
    EncoderLayer, LayerNames, LayerNorm, LayerShape, NormPlacement, Pooler, WeightScope,
};
use crate::onnx::builder::Precision;
use crate::onnx::proto::{DataType, ModelProto};
use crate::onnx::{Dim, GraphBuilder, Value};

/// Legacy module names (what `save_pretrained` writes) → transformers 5 module names.
const RENAMES: &[(&str, &str)] = &[
    ("encoder.layer.", "layers."),
    ("attention.attention.query", "attention.q_proj"),
    ("attention.attention.key", "attention.k_proj"),
    ("attention.attention.value", "attention.v_proj"),
    ("attention.output.dense", "attention.o_proj"),
    ("intermediate.dense", "mlp.fc1"),
    ("output.dense", "mlp.fc2"),
];

/// Module names inside `encoder.layer.N` (legacy names; see [`RENAMES`]).
const LAYER_NAMES: LayerNames = LayerNames {
    attention: AttentionNames {
        query: "attention.attention.query",
        key: "attention.attention.key",
        value: "attention.attention.value",
        output: "attention.output.dense",
    },
    fc1: "intermediate.dense",
    fc2: "output.dense",
    norm1: "layernorm_before",
    norm2: "layernorm_after",
};

/// Which member of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Vit,
    Deit,
    Beit,
}

/// BEiT's relative position bias tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelativeBias {
    None,
    PerLayer,
    Shared,
}

/// How the pooled output is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pooling {
    /// `act(dense(layernorm(x)[:, 0]))` (ViT, DeiT).
    DenseOnClassToken {
        out_dim: usize,
        activation: Activation,
    },
    /// `layernorm(mean(x[:, 1:]))` with the pooler's own layer norm (BEiT mean pooling).
    MeanOfPatches,
    /// `layernorm(x)[:, 0]` (BEiT without mean pooling).
    ClassToken,
}

/// The fields of a ViT, DeiT or BEiT config the graph depends on.
#[derive(Debug, Clone)]
pub struct VitConfig {
    pub variant: Variant,
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub layer_norm_eps: f32,
    pub qkv_bias: [bool; 3],
    pub absolute_positions: bool,
    pub relative_bias: RelativeBias,
    pub layer_scale: bool,
    pub pooling: Pooling,
}

impl VitConfig {
    pub fn from_config(cfg: &ConfigView, variant: Variant) -> Result<Self> {
        let hidden_size = cfg.usize_or("hidden_size", 768)?;
        let image_size = cfg.square_or("image_size", 224)?;
        let patch_size = cfg.square_or("patch_size", 16)?;
        if patch_size == 0 || image_size % patch_size != 0 {
            return Err(cfg.problem(
                "image_size",
                &format!("({image_size}) is not a multiple of patch_size ({patch_size})"),
            ));
        }
        let layer_norm_eps = cfg.eps_or("layer_norm_eps", 1e-12)?;
        let (qkv_bias, absolute_positions, relative_bias, layer_scale, pooling) = match variant {
            Variant::Vit | Variant::Deit => {
                let bias = cfg.bool_or("qkv_bias", true)?;
                let pooling = Pooling::DenseOnClassToken {
                    out_dim: cfg.opt_usize("pooler_output_size")?.unwrap_or(hidden_size),
                    activation: super::activation(cfg, "pooler_act", "tanh")?,
                };
                ([bias; 3], true, RelativeBias::None, false, pooling)
            }
            Variant::Beit => {
                let relative = if cfg.bool_or("use_shared_relative_position_bias", false)? {
                    RelativeBias::Shared
                } else if cfg.bool_or("use_relative_position_bias", false)? {
                    RelativeBias::PerLayer
                } else {
                    RelativeBias::None
                };
                let pooling = if cfg.bool_or("use_mean_pooling", true)? {
                    Pooling::MeanOfPatches
                } else {
                    Pooling::ClassToken
                };
                (
                    [true, false, true],
                    cfg.bool_or("use_absolute_position_embeddings", false)?,
                    relative,
                    cfg.f32_or("layer_scale_init_value", 0.1)? > 0.0,
                    pooling,
                )
            }
        };
        Ok(Self {
            variant,
            image_size,
            patch_size,
            num_channels: cfg.usize_or("num_channels", 3)?,
            hidden_size,
            num_layers: cfg.usize_or("num_hidden_layers", 12)?,
            num_heads: cfg.usize_or("num_attention_heads", 12)?,
            intermediate_size: cfg.usize_or("intermediate_size", 3072)?,
            activation: super::activation(cfg, "hidden_act", "gelu")?,
            layer_norm_eps,
            qkv_bias,
            absolute_positions,
            relative_bias,
            layer_scale,
            pooling,
        })
    }

    fn layer_shape(&self) -> LayerShape {
        LayerShape {
            hidden: self.hidden_size,
            heads: self.num_heads,
            intermediate: self.intermediate_size,
            activation: self.activation,
            layer_norm_eps: self.layer_norm_eps,
            qkv_bias: self.qkv_bias,
            placement: NormPlacement::Pre,
        }
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// The tokens put before the patches.
    fn prefix_tokens(&self) -> &'static [&'static str] {
        match self.variant {
            Variant::Deit => &["cls_token", "distillation_token"],
            Variant::Vit | Variant::Beit => &["cls_token"],
        }
    }

    /// Sequence length: patches plus prefix tokens.
    pub fn seq_len(&self) -> usize {
        self.grid().pow(2) + self.prefix_tokens().len()
    }

    /// Width of the pooled output.
    pub fn output_dim(&self) -> usize {
        match self.pooling {
            Pooling::DenseOnClassToken { out_dim, .. } => out_dim,
            Pooling::MeanOfPatches | Pooling::ClassToken => self.hidden_size,
        }
    }
}

/// Builds `vision.onnx` from the weights under `prefix` (e.g. `vision_model.`).
pub fn build(
    c: &VitConfig,
    weights: &Weights,
    prefix: &str,
    precision: Precision,
) -> Result<ModelProto> {
    let w = WeightScope::new(weights, prefix, RENAMES);
    let mut g = GraphBuilder::with_precision("vision", precision);
    let (h, p) = (c.hidden_size, c.patch_size);
    let pixels = pixel_input(&mut g, c.num_channels, c.image_size);

    let embeddings = g.scoped("embeddings", |g| -> Result<_> {
        let e = w.child("embeddings");
        let patch = e.child("patch_embeddings.projection");
        let kernel = patch.initializer(g, "weight", &[h, c.num_channels, p, p])?;
        let bias = patch.initializer(g, "bias", &[h])?;
        let patches = patch_embedding(g, &pixels, &kernel, Some(&bias), h, p);
        let tokens = c
            .prefix_tokens()
            .iter()
            .map(|t| e.initializer(g, t, &[h]))
            .collect::<Result<Vec<_>>>()?;
        let tokens = prepend_tokens(g, &pixels, &tokens, patches, h);
        if c.absolute_positions {
            let positions = e.initializer(g, "position_embeddings", &[c.seq_len(), h])?;
            Ok(g.add(&tokens, &positions))
        } else {
            Ok(tokens)
        }
    })?;

    let shared_bias = match c.relative_bias {
        RelativeBias::Shared => Some(relative_position_bias(
            &mut g,
            c,
            w.tensor(
                "encoder.relative_position_bias.relative_position_bias_table",
                &[num_relative_distances(c.grid()), c.num_heads],
            )?,
            "encoder.relative_position_bias",
        )),
        RelativeBias::None | RelativeBias::PerLayer => None,
    };

    let mut x = embeddings;
    for i in 0..c.num_layers {
        let layer = w.child(&format!("encoder.layer.{i}"));
        x = g.scoped(&format!("layers.{i}"), |g| -> Result<_> {
            let bias = match c.relative_bias {
                RelativeBias::PerLayer => Some(relative_position_bias(
                    g,
                    c,
                    layer.tensor(
                        "attention.attention.relative_position_bias.relative_position_bias_table",
                        &[num_relative_distances(c.grid()), c.num_heads],
                    )?,
                    &layer.name("relative_position_bias"),
                )),
                RelativeBias::Shared => shared_bias.clone(),
                RelativeBias::None => None,
            };
            let layer_scale = if c.layer_scale {
                Some((
                    layer.initializer(g, "lambda_1", &[h])?,
                    layer.initializer(g, "lambda_2", &[h])?,
                ))
            } else {
                None
            };
            let block = EncoderLayer::load(g, &layer, &LAYER_NAMES, &c.layer_shape(), layer_scale)?;
            Ok(block.forward(g, &x, bias.as_ref()))
        })?;
    }

    let pooled = g.scoped("pooler", |g| -> Result<_> {
        Ok(match c.pooling {
            Pooling::DenseOnClassToken {
                out_dim,
                activation,
            } => {
                let sequence =
                    LayerNorm::load(g, &w, "layernorm", h, c.layer_norm_eps)?.forward(g, &x);
                Pooler::load(g, &w, "pooler.dense", h, out_dim, activation)?.forward(g, &sequence)
            }
            Pooling::ClassToken => {
                let sequence =
                    LayerNorm::load(g, &w, "layernorm", h, c.layer_norm_eps)?.forward(g, &x);
                first_token(g, &sequence)
            }
            Pooling::MeanOfPatches => {
                let start = g.const_i64(&[1], &[1]);
                let end = g.const_i64(&[1], &[i64::MAX]);
                let patches = g.slice(&x, &start, &end, &[1]);
                let mean = g.reduce_mean(&patches, &[1]);
                let mean = g.squeeze(&mean, &[1]);
                LayerNorm::load(g, &w, "pooler.layernorm", h, c.layer_norm_eps)?.forward(g, &mean)
            }
        })
    })?;
    g.output(
        &pooled,
        names::IMAGE_FEATURES,
        DataType::Float,
        &[Dim::Dynamic("batch"), Dim::Fixed(c.output_dim() as i64)],
    );
    let doc = match c.variant {
        Variant::Vit => "vtde vision tower (ViT): pixel_values → pooled output",
        Variant::Deit => "vtde vision tower (DeiT): pixel_values → pooled output",
        Variant::Beit => "vtde vision tower (BEiT): pixel_values → pooled output",
    };
    Ok(g.finish(doc, &[]))
}

/// Rows of a BEiT relative position bias table for a `grid`×`grid` window: every
/// relative offset, plus class-to-token, token-to-class and class-to-class.
fn num_relative_distances(grid: usize) -> usize {
    (2 * grid - 1) * (2 * grid - 1) + 3
}

/// BEiT's relative position index (`generate_relative_position_index`), for a square
/// window of `grid` patches per side: `[tokens, tokens]` rows into the bias table.
fn relative_position_index(grid: usize) -> Vec<Vec<usize>> {
    let area = grid * grid;
    let n = num_relative_distances(grid);
    let mut index = vec![vec![0usize; area + 1]; area + 1];
    for i in 0..area {
        let (yi, xi) = (i / grid, i % grid);
        for j in 0..area {
            let (yj, xj) = (j / grid, j % grid);
            let dy = yi + grid - 1 - yj;
            let dx = xi + grid - 1 - xj;
            index[i + 1][j + 1] = dy * (2 * grid - 1) + dx;
        }
    }
    for (k, row) in index.iter_mut().enumerate() {
        row[0] = n - 2; // token to class
        if k == 0 {
            row.fill(n - 3); // class to token
            row[0] = n - 1; // class to class
        }
    }
    index
}

/// Expands a relative position bias table into the constant `[1, heads, seq, seq]`
/// attention bias it stands for.
fn relative_position_bias(
    g: &mut GraphBuilder,
    c: &VitConfig,
    table: &Tensor,
    name: &str,
) -> Value {
    let index = relative_position_index(c.grid());
    let (seq, heads) = (index.len(), c.num_heads);
    let mut bias = vec![0f32; heads * seq * seq];
    for (i, row) in index.iter().enumerate() {
        for (j, &r) in row.iter().enumerate() {
            for hd in 0..heads {
                bias[(hd * seq + i) * seq + j] = table.data[r * heads + hd];
            }
        }
    }
    g.weight(&format!("{name}.bias"), &[1, heads, seq, seq], &bias)
}
