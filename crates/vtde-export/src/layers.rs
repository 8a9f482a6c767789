//! The reusable pieces every tower is built from: linear layers, layer norm,
//! activations, multi-head self-attention, the MLP, the encoder layer (pre- or
//! post-norm), poolers and attention masks.
//!
//! Each piece has a `load` that reads and shape-checks its weights through a
//! [`WeightScope`], and a `forward` that emits its ONNX nodes. Architectures differ only
//! in parameters (norm placement, activation, epsilon, bias), never in copies of this code.

use crate::checkpoint::{Tensor, Weights};
use crate::error::{Error, Result};
use crate::onnx::builder::Precision;
use crate::onnx::proto::DataType;
use crate::onnx::{GraphBuilder, Value};

/// Weight names under one module prefix, with renaming rules that give the other naming
/// scheme of the same weight (transformers 5 renamed some modules, e.g. ViT's
/// `encoder.layer.N.attention.attention.query` became `layers.N.attention.q_proj`; both
/// kinds of checkpoint exist).
#[derive(Debug, Clone)]
pub struct WeightScope<'w> {
    weights: &'w Weights,
    prefix: String,
    /// Other prefixes the same module is saved under (e.g. `vision_model.vision_model.`
    /// for a CLIP vision tower saved by transformers 4).
    alt_prefixes: Vec<String>,
    renames: &'static [(&'static str, &'static str)],
}

impl<'w> WeightScope<'w> {
    /// A scope at `prefix` (e.g. `vision_model.`) with `renames` as `(old, new)` pairs.
    pub fn new(
        weights: &'w Weights,
        prefix: &str,
        renames: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            weights,
            prefix: prefix.to_owned(),
            alt_prefixes: Vec::new(),
            renames,
        }
    }

    /// Also looks for every weight under `prefix` instead of the main one.
    pub fn with_alt_prefix(mut self, prefix: &str) -> Self {
        self.alt_prefixes.push(prefix.to_owned());
        self
    }

    /// The scope of a sub-module, e.g. `encoder.layer.3.`.
    pub fn child(&self, name: &str) -> Self {
        Self {
            weights: self.weights,
            prefix: format!("{}{name}.", self.prefix),
            alt_prefixes: self
                .alt_prefixes
                .iter()
                .map(|p| format!("{p}{name}."))
                .collect(),
            renames: self.renames,
        }
    }

    /// The full name of a weight in this scope, as the tower code spells it.
    pub fn name(&self, local: &str) -> String {
        format!("{}{local}", self.prefix)
    }

    /// Whether this scope has a weight called `local`, under either naming scheme.
    pub fn contains(&self, local: &str) -> bool {
        let name = self.name(local);
        self.weights.contains(&name) || self.aliases(local).iter().any(|a| self.weights.contains(a))
    }

    /// Every other name the weight `local` may be saved under.
    fn aliases(&self, local: &str) -> Vec<String> {
        let name = self.name(local);
        let mut out = Vec::new();
        let candidates = std::iter::once(name.clone())
            .chain(self.alt_prefixes.iter().map(|p| format!("{p}{local}")));
        for candidate in candidates {
            let renamed = self.renamed(&candidate);
            for n in [candidate, renamed] {
                if n != name && !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out
    }

    fn renamed(&self, name: &str) -> String {
        self.renames
            .iter()
            .fold(name.to_owned(), |n, (old, new)| n.replace(old, new))
    }

    /// The weight called `local`, checked to have `shape`.
    pub fn tensor(&self, local: &str, shape: &[usize]) -> Result<&'w Tensor> {
        let name = self.name(local);
        let tensor = self.weights.get(&name, &self.aliases(local))?;
        // A leading 1 is squeezed away: ViT stores cls_token as [1, 1, D].
        let squeezed: Vec<usize> = {
            let mut s = tensor.shape.as_slice();
            while s.len() > shape.len() && s.first() == Some(&1) {
                s = &s[1..];
            }
            s.to_vec()
        };
        if squeezed != shape {
            return Err(Error::WeightShape {
                name,
                expected: shape.to_vec(),
                found: tensor.shape.clone(),
            });
        }
        Ok(tensor)
    }

    /// Adds the weight `local` to the graph as an initializer named after it, in the
    /// graph's activation type.
    pub fn initializer(&self, g: &mut GraphBuilder, local: &str, shape: &[usize]) -> Result<Value> {
        let tensor = self.tensor(local, shape)?;
        Ok(g.weight(&self.name(local), shape, &tensor.data))
    }

    /// Like [`Self::initializer`], but always f32.
    pub fn initializer_f32(
        &self,
        g: &mut GraphBuilder,
        local: &str,
        shape: &[usize],
    ) -> Result<Value> {
        let tensor = self.tensor(local, shape)?;
        Ok(g.weight_f32(&self.name(local), shape, &tensor.data))
    }
}

/// `y = x·Wᵀ + b`, with `W` stored transposed so that the graph is one `MatMul`, or, in
/// an int8 graph, one integer matmul on a rotated, quantized input (see [`quantize_input`]).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: LinearWeight,
    bias: Option<Value>,
    out_dim: usize,
}

#[derive(Debug, Clone)]
enum LinearWeight {
    /// `Wᵀ` in the graph's float type.
    Float(Value),
    /// `H·Wᵀ` (rows rotated as the input is, see [`quantize_input`]) quantized per output
    /// column: `≈ q · scale`, zero points 0.
    Int8 {
        q: Value,
        scale: Value,
        zero_point: Value,
    },
}

/// Largest magnitude of a quantized weight or activation.
const INT8_MAX: f32 = 127.0;

/// Block size of the Hadamard rotation (the largest power of two up to 64 that divides
/// the input width; 1 means no rotation).
fn rotation_block(width: usize) -> usize {
    let mut block = 64;
    while block > 1 && !width.is_multiple_of(block) {
        block /= 2;
    }
    block
}

/// The orthonormal Sylvester-Hadamard matrix of size `n` (a power of two), row-major.
/// It is symmetric and its own inverse.
fn hadamard(n: usize) -> Vec<f64> {
    let mut h = vec![1.0f64];
    let mut size = 1;
    while size < n {
        let mut next = vec![0.0; 4 * size * size];
        for i in 0..size {
            for j in 0..size {
                let v = h[i * size + j];
                next[i * 2 * size + j] = v;
                next[i * 2 * size + j + size] = v;
                next[(i + size) * 2 * size + j] = v;
                next[(i + size) * 2 * size + j + size] = -v;
            }
        }
        h = next;
        size *= 2;
    }
    let norm = (n as f64).sqrt();
    h.iter().map(|v| v / norm).collect()
}

impl Linear {
    /// Loads `{module}.weight` (`[out, in]`) and, when `bias`, `{module}.bias`.
    pub fn load(
        g: &mut GraphBuilder,
        w: &WeightScope,
        module: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
    ) -> Result<Self> {
        let name = w.name(&format!("{module}.weight"));
        let weight_t = w
            .tensor(&format!("{module}.weight"), &[out_dim, in_dim])?
            .transposed();
        // An input too narrow to rotate in blocks of 8 or more cannot spread its outliers,
        // and plain quantization of it costs too much accuracy: such a layer (never one of
        // a real model, whose widths are multiples of 64) stays in float.
        let quantize = g.precision() == Precision::Int8 && rotation_block(in_dim) >= 8;
        let weight =
            match g.precision() {
                Precision::Int8 if quantize => {
                    let (q, scales) = quantize_weight(&weight_t.data, in_dim, out_dim);
                    LinearWeight::Int8 {
                        q: g.weight_i8(&format!("{name}.T.int8"), &[in_dim, out_dim], &q),
                        scale: g.weight(&format!("{name}.T.scale"), &[out_dim], &scales),
                        zero_point: g.weight_i8(
                            &format!("{name}.T.zero_point"),
                            &[out_dim],
                            &vec![0; out_dim],
                        ),
                    }
                }
                Precision::Int8 | Precision::Fp32 | Precision::Fp16 => LinearWeight::Float(
                    g.weight(&format!("{name}.T"), &[in_dim, out_dim], &weight_t.data),
                ),
            };
        let bias = if bias {
            Some(w.initializer(g, &format!("{module}.bias"), &[out_dim])?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            out_dim,
        })
    }

    /// Whether this layer runs on a quantized input.
    pub fn is_quantized(&self) -> bool {
        matches!(self.weight, LinearWeight::Int8 { .. })
    }

    /// `x·Wᵀ + b` for `x` of any rank; `in_dim` is `x`'s last dimension.
    pub fn forward(&self, g: &mut GraphBuilder, x: &Value, in_dim: usize) -> Value {
        match &self.weight {
            LinearWeight::Float(weight_t) => {
                let y = g.matmul(x, weight_t);
                self.add_bias(g, y)
            }
            LinearWeight::Int8 { .. } => {
                let input = quantize_input(g, x, in_dim);
                self.forward_quantized(g, &input)
            }
        }
    }

    /// The layer on an input already quantized by [`quantize_input`] (so that the
    /// query, key and value projections share one quantization of their input).
    pub fn forward_quantized(&self, g: &mut GraphBuilder, input: &QuantizedInput) -> Value {
        let y = match &self.weight {
            LinearWeight::Int8 {
                q,
                scale,
                zero_point,
            } => {
                let product = g.node(
                    "MatMulInteger",
                    &[&input.q, q, &input.zero_point, zero_point],
                    vec![],
                );
                // Cast → Mul(Mul(1, column scale)) is the shape ONNX Runtime fuses into
                // its integer-matmul-to-float kernel.
                let product = g.cast(&product, DataType::Float);
                let one = g.scalar_f32(1.0);
                let column_scale = g.mul(&one, scale);
                let y = g.mul(&product, &column_scale);
                let y = g.mul(&y, &input.row_scale);
                let n = g.const_i64(&[1], &[self.out_dim as i64]);
                let shape = g.concat(&[&input.leading_shape, &n], 0);
                g.node("Reshape", &[&y, &shape], vec![])
            }
            // Not reached: float layers never get a quantized input; running the float
            // matmul would need the unquantized input, which the caller no longer has.
            LinearWeight::Float(weight_t) => g.matmul(&input.q, weight_t),
        };
        self.add_bias(g, y)
    }

    fn add_bias(&self, g: &mut GraphBuilder, y: Value) -> Value {
        match &self.bias {
            Some(b) => g.add(&y, b),
            None => y,
        }
    }
}

/// An activation prepared for int8 linear layers (see [`quantize_input`]).
#[derive(Debug, Clone)]
pub struct QuantizedInput {
    /// `[rows, width]` uint8, zero point 128.
    q: Value,
    /// The uint8 zero point, 128.
    zero_point: Value,
    /// `[rows, 1]`: each row's scale.
    row_scale: Value,
    /// The input's shape without its last dimension, to restore the output's rank.
    leading_shape: Value,
}

/// Quantizes `x` (last dimension `width`) for int8 linear layers, calibration-free:
/// a block-Hadamard rotation of the last dimension spreads the outlier channels of
/// transformer activations over their block, then each row (token) is quantized
/// symmetrically to uint8 (shifted by 128) with its own scale. Per-row scales keep a
/// text's embedding independent of what else is in its batch. The weights are rotated
/// the same way at export time ([`quantize_weight`]), so the product is unchanged.
///
/// Measured on all-MiniLM-L6-v2's text tower: embedding cosine 0.9994 against fp32,
/// where plain per-tensor dynamic quantization gives 0.991.
pub fn quantize_input(g: &mut GraphBuilder, x: &Value, width: usize) -> QuantizedInput {
    let block = rotation_block(width);
    let rows = if block > 1 {
        let blocks = g.reshape(x, &[-1, block as i64]);
        let h = g.shared_f32(&format!("hadamard{block}"), &[block, block], || {
            hadamard(block).iter().map(|&v| v as f32).collect()
        });
        let rotated = g.matmul(&blocks, &h);
        g.reshape(&rotated, &[-1, width as i64])
    } else {
        g.reshape(x, &[-1, width as i64])
    };
    let magnitude = g.unary("Abs", &rows);
    let amax = g.node(
        "ReduceMax",
        &[&magnitude],
        vec![
            crate::onnx::builder::Attr::ints("axes", &[1]),
            crate::onnx::builder::Attr::int("keepdims", 0),
        ],
    );
    let floor = g.scalar_f32(1e-8);
    let amax = g.node("Max", &[&amax, &floor], vec![]);
    let levels = g.scalar_f32(INT8_MAX);
    let scale = g.div(&amax, &levels); // [rows]
    let scale_shape = g.unary("Shape", &scale);
    let zero_points = g.node(
        "ConstantOfShape",
        &[&scale_shape],
        vec![crate::onnx::builder::Attr::tensor(
            "value",
            DataType::Uint8,
            &[1],
            vec![128],
        )],
    );
    let q = g.node(
        "QuantizeLinear",
        &[&rows, &scale, &zero_points],
        vec![crate::onnx::builder::Attr::int("axis", 0)],
    );
    let row_scale = g.unsqueeze(&scale, &[1]);
    let shape = g.unary("Shape", x);
    let start = g.const_i64(&[1], &[0]);
    let end = g.const_i64(&[1], &[-1]);
    let leading_shape = g.slice(&shape, &start, &end, &[0]);
    let zero_point = g.const_u8(&[], &[128]);
    QuantizedInput {
        q,
        zero_point,
        row_scale,
        leading_shape,
    }
}

/// Rotates the rows of a row-major `[rows, cols]` matrix (`Wᵀ`) in Hadamard blocks, as
/// [`quantize_input`] rotates its input, then quantizes it symmetrically per column:
/// returns the int8 values and one scale per column.
fn quantize_weight(data: &[f32], rows: usize, cols: usize) -> (Vec<i8>, Vec<f32>) {
    let block = rotation_block(rows);
    let h = hadamard(block);
    let mut rotated = vec![0f64; rows * cols];
    for b in (0..rows).step_by(block) {
        for i in 0..block {
            for j in 0..block {
                let hij = h[i * block + j];
                if hij == 0.0 {
                    continue;
                }
                let (dst, src) = ((b + i) * cols, (b + j) * cols);
                for c in 0..cols {
                    rotated[dst + c] += hij * f64::from(data[src + c]);
                }
            }
        }
    }
    let mut scales = vec![0f64; cols];
    for r in 0..rows {
        for (c, s) in scales.iter_mut().enumerate() {
            *s = s.max(rotated[r * cols + c].abs());
        }
    }
    // An all-zero column keeps a tiny scale so that nothing divides by zero.
    let scales: Vec<f64> = scales
        .iter()
        .map(|s| s.max(1e-12) / f64::from(INT8_MAX))
        .collect();
    let q = rotated
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let limit = f64::from(INT8_MAX);
            (x / scales[i % cols]).round().clamp(-limit, limit) as i8
        })
        .collect();
    (q, scales.iter().map(|&s| s as f32).collect())
}

/// Layer normalization over the last axis (`LayerNormalization`, opset 17).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    scale: Value,
    bias: Value,
    epsilon: f32,
}

impl LayerNorm {
    pub fn load(
        g: &mut GraphBuilder,
        w: &WeightScope,
        module: &str,
        dim: usize,
        epsilon: f32,
    ) -> Result<Self> {
        Ok(Self {
            scale: w.initializer_f32(g, &format!("{module}.weight"), &[dim])?,
            bias: w.initializer_f32(g, &format!("{module}.bias"), &[dim])?,
            epsilon,
        })
    }

    pub fn forward(&self, g: &mut GraphBuilder, x: &Value) -> Value {
        g.layer_norm(x, &self.scale, &self.bias, self.epsilon)
    }
}

/// The activation functions of transformers' `ACT2FN` that vtde's towers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `0.5·x·(1 + erf(x/√2))` (`gelu`).
    Gelu,
    /// Tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    GeluTanh,
    /// `x·σ(1.702·x)` (`quick_gelu`, CLIP).
    QuickGelu,
    Relu,
    Tanh,
    /// `x·σ(x)` (`silu`, `swish`).
    Silu,
}

impl Activation {
    /// The activation transformers means by `name` in a config's `hidden_act`.
    pub fn from_hf(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "quick_gelu" => Self::QuickGelu,
            "relu" => Self::Relu,
            "tanh" => Self::Tanh,
            "silu" | "swish" => Self::Silu,
            _ => return None,
        })
    }

    /// The `hidden_act` names accepted, for error messages.
    pub const SUPPORTED: &'static str =
        "gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu, tanh, silu, swish";

    pub fn forward(self, g: &mut GraphBuilder, x: &Value) -> Value {
        match self {
            // The Div-by-√2 form is the one ONNX Runtime fuses into its Gelu kernel.
            Self::Gelu => {
                let sqrt2 = g.scalar_f32(std::f32::consts::SQRT_2);
                let one = g.scalar_f32(1.0);
                let half = g.scalar_f32(0.5);
                let scaled = g.div(x, &sqrt2);
                let erf = g.unary("Erf", &scaled);
                let erf1 = g.add(&erf, &one);
                let xe = g.mul(x, &erf1);
                g.mul(&xe, &half)
            }
            // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
            Self::GeluTanh => {
                let c = g.scalar_f32((2.0 / std::f32::consts::PI).sqrt());
                let k = g.scalar_f32(0.044715);
                let one = g.scalar_f32(1.0);
                let half = g.scalar_f32(0.5);
                let x2 = g.mul(x, x);
                let x3 = g.mul(&x2, x);
                let kx3 = g.mul(&x3, &k);
                let inner = g.add(x, &kx3);
                let scaled = g.mul(&inner, &c);
                let t = g.unary("Tanh", &scaled);
                let t1 = g.add(&t, &one);
                let xt = g.mul(x, &t1);
                g.mul(&xt, &half)
            }
            Self::QuickGelu => {
                let k = g.scalar_f32(1.702);
                let kx = g.mul(x, &k);
                let s = g.unary("Sigmoid", &kx);
                g.mul(x, &s)
            }
            Self::Relu => g.unary("Relu", x),
            Self::Tanh => g.unary("Tanh", x),
            Self::Silu => {
                let s = g.unary("Sigmoid", x);
                g.mul(x, &s)
            }
        }
    }
}

/// Names of the four projections of an attention block inside its module.
#[derive(Debug, Clone, Copy)]
pub struct AttentionNames {
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    pub output: &'static str,
}

/// Multi-head self-attention with an optional additive mask.
#[derive(Debug, Clone)]
pub struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    pub fn load(
        g: &mut GraphBuilder,
        w: &WeightScope,
        names: AttentionNames,
        hidden: usize,
        heads: usize,
        // Whether the query, key and value projections have biases (BEiT: key has none).
        qkv_bias: [bool; 3],
    ) -> Result<Self> {
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(Error::Config {
                path: "config.json".into(),
                problem: format!(
                    "hidden size {hidden} is not divisible by {heads} attention heads"
                ),
            });
        }
        Ok(Self {
            query: Linear::load(g, w, names.query, hidden, hidden, qkv_bias[0])?,
            key: Linear::load(g, w, names.key, hidden, hidden, qkv_bias[1])?,
            value: Linear::load(g, w, names.value, hidden, hidden, qkv_bias[2])?,
            output: Linear::load(g, w, names.output, hidden, hidden, true)?,
            heads,
            head_dim: hidden / heads,
        })
    }

    /// `x`: `[batch, seq, hidden]`; `mask`: additive, broadcastable to
    /// `[batch, heads, seq, seq]`.
    pub fn forward(&self, g: &mut GraphBuilder, x: &Value, mask: Option<&Value>) -> Value {
        let (h, d) = (self.heads as i64, self.head_dim as i64);
        let hidden = self.heads * self.head_dim;
        let (q, k, v) = if self.query.is_quantized() {
            // One rotation and quantization of `x` serves all three projections.
            let input = quantize_input(g, x, hidden);
            (
                self.query.forward_quantized(g, &input),
                self.key.forward_quantized(g, &input),
                self.value.forward_quantized(g, &input),
            )
        } else {
            (
                self.query.forward(g, x, hidden),
                self.key.forward(g, x, hidden),
                self.value.forward(g, x, hidden),
            )
        };
        let q = g.reshape(&q, &[0, 0, h, d]);
        let q = g.transpose(&q, &[0, 2, 1, 3]); // [b, h, s, d]
        let k = g.reshape(&k, &[0, 0, h, d]);
        let k = g.transpose(&k, &[0, 2, 3, 1]); // [b, h, d, s]
        let v = g.reshape(&v, &[0, 0, h, d]);
        let v = g.transpose(&v, &[0, 2, 1, 3]); // [b, h, s, d]
        let scores = g.matmul(&q, &k);
        let scale = g.scalar_f32((self.head_dim as f32).powf(-0.5));
        let scores = g.mul(&scores, &scale);
        let scores = match mask {
            Some(m) => g.add(&scores, m),
            None => scores,
        };
        let probs = g.softmax(&scores, -1);
        let context = g.matmul(&probs, &v);
        let context = g.transpose(&context, &[0, 2, 1, 3]);
        let context = g.reshape(&context, &[0, 0, h * d]);
        self.output.forward(g, &context, hidden)
    }
}

/// The feed-forward block: `fc2(act(fc1(x)))`.
#[derive(Debug, Clone)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
    hidden: usize,
    intermediate: usize,
}

impl Mlp {
    pub fn load(
        g: &mut GraphBuilder,
        w: &WeightScope,
        (fc1, fc2): (&str, &str),
        hidden: usize,
        intermediate: usize,
        activation: Activation,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::load(g, w, fc1, hidden, intermediate, true)?,
            fc2: Linear::load(g, w, fc2, intermediate, hidden, true)?,
            activation,
            hidden,
            intermediate,
        })
    }

    pub fn forward(&self, g: &mut GraphBuilder, x: &Value) -> Value {
        let h = self.fc1.forward(g, x, self.hidden);
        let h = self.activation.forward(g, &h);
        self.fc2.forward(g, &h, self.intermediate)
    }
}

/// Where an encoder layer normalizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormPlacement {
    /// `x + attn(ln1(x))`, then `h + mlp(ln2(h))` (ViT, CLIP, BEiT).
    Pre,
    /// `ln1(x + attn(x))`, then `ln2(h + mlp(h))` (BERT, RoBERTa).
    Post,
}

/// Where an encoder layer's weights sit inside its module, as each architecture names
/// them.
#[derive(Debug, Clone, Copy)]
pub struct LayerNames {
    pub attention: AttentionNames,
    pub fc1: &'static str,
    pub fc2: &'static str,
    pub norm1: &'static str,
    pub norm2: &'static str,
}

/// The sizes and choices an encoder layer is built with.
#[derive(Debug, Clone, Copy)]
pub struct LayerShape {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub activation: Activation,
    pub layer_norm_eps: f32,
    /// Whether the query, key and value projections have biases.
    pub qkv_bias: [bool; 3],
    pub placement: NormPlacement,
}

/// One transformer encoder layer.
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    pub attention: Attention,
    pub mlp: Mlp,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub placement: NormPlacement,
    /// Per-channel scales of the attention and MLP branches (BEiT's `lambda_1`,
    /// `lambda_2`); pre-norm layers only.
    pub layer_scale: Option<(Value, Value)>,
}

impl EncoderLayer {
    /// Loads a layer from the module `w`, with BEiT-style branch scales when given.
    pub fn load(
        g: &mut GraphBuilder,
        w: &WeightScope,
        names: &LayerNames,
        shape: &LayerShape,
        layer_scale: Option<(Value, Value)>,
    ) -> Result<Self> {
        let h = shape.hidden;
        Ok(Self {
            attention: Attention::load(g, w, names.attention, h, shape.heads, shape.qkv_bias)?,
            mlp: Mlp::load(
                g,
                w,
                (names.fc1, names.fc2),
                h,
                shape.intermediate,
                shape.activation,
            )?,
            norm1: LayerNorm::load(g, w, names.norm1, h, shape.layer_norm_eps)?,
            norm2: LayerNorm::load(g, w, names.norm2, h, shape.layer_norm_eps)?,
            placement: shape.placement,
            layer_scale,
        })
    }

    pub fn forward(&self, g: &mut GraphBuilder, x: &Value, mask: Option<&Value>) -> Value {
        match self.placement {
            NormPlacement::Pre => {
                let n = self.norm1.forward(g, x);
                let mut a = self.attention.forward(g, &n, mask);
                if let Some((scale, _)) = &self.layer_scale {
                    a = g.mul(&a, scale);
                }
                let h = g.add(x, &a);
                let n = self.norm2.forward(g, &h);
                let mut m = self.mlp.forward(g, &n);
                if let Some((_, scale)) = &self.layer_scale {
                    m = g.mul(&m, scale);
                }
                g.add(&h, &m)
            }
            NormPlacement::Post => {
                let a = self.attention.forward(g, x, mask);
                let h = g.add(x, &a);
                let h = self.norm1.forward(g, &h);
                let m = self.mlp.forward(g, &h);
                let o = g.add(&h, &m);
                self.norm2.forward(g, &o)
            }
        }
    }
}

/// Declares the vision graph's input, `pixel_values` `[batch, channels, size, size]`.
pub fn pixel_input(g: &mut GraphBuilder, channels: usize, size: usize) -> Value {
    g.input(
        vtde_package::names::PIXEL_VALUES,
        DataType::Float,
        &[
            crate::onnx::Dim::Dynamic("batch"),
            crate::onnx::Dim::Fixed(channels as i64),
            crate::onnx::Dim::Fixed(size as i64),
            crate::onnx::Dim::Fixed(size as i64),
        ],
    )
}

/// Cuts `pixels` into `patch`×`patch` patches and embeds each (a strided convolution):
/// `[batch, patches, hidden]`.
pub fn patch_embedding(
    g: &mut GraphBuilder,
    pixels: &Value,
    kernel: &Value,
    bias: Option<&Value>,
    hidden: usize,
    patch: usize,
) -> Value {
    let p = patch as i64;
    let x = g.conv2d(pixels, kernel, bias, [p; 2], [p; 2]);
    let x = g.reshape(&x, &[0, hidden as i64, -1]);
    g.transpose(&x, &[0, 2, 1])
}

/// Puts learned `[hidden]` tokens (class, distillation) in front of the patches of every
/// image of the batch.
pub fn prepend_tokens(
    g: &mut GraphBuilder,
    pixels: &Value,
    tokens: &[Value],
    patches: Value,
    hidden: usize,
) -> Value {
    let batch = g.shape_slice(pixels, 0, 1);
    let rest = g.const_i64(&[2], &[1, hidden as i64]);
    let shape = g.concat(&[&batch, &rest], 0);
    let mut parts: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let t = g.reshape(t, &[1, 1, hidden as i64]);
            g.expand(&t, &shape)
        })
        .collect();
    parts.push(patches);
    let refs: Vec<&Value> = parts.iter().collect();
    g.concat(&refs, 1)
}

/// `x[:, 0]`: the first token of `[batch, seq, hidden]`.
pub fn first_token(g: &mut GraphBuilder, x: &Value) -> Value {
    let zero = g.const_i64(&[], &[0]);
    g.gather(x, &zero, 1)
}

/// BERT/ViT's pooler: `act(dense(x[:, 0]))`.
#[derive(Debug, Clone)]
pub struct Pooler {
    dense: Linear,
    activation: Activation,
    hidden: usize,
}

impl Pooler {
    pub fn load(
        g: &mut GraphBuilder,
        w: &WeightScope,
        module: &str,
        hidden: usize,
        out_dim: usize,
        activation: Activation,
    ) -> Result<Self> {
        Ok(Self {
            dense: Linear::load(g, w, module, hidden, out_dim, true)?,
            activation,
            hidden,
        })
    }

    pub fn forward(&self, g: &mut GraphBuilder, sequence: &Value) -> Value {
        let cls = first_token(g, sequence);
        let h = self.dense.forward(g, &cls, self.hidden);
        self.activation.forward(g, &h)
    }
}

/// Turns an i64 `[batch, seq]` padding mask (1 = token, 0 = padding) into the additive
/// `[batch, 1, 1, seq]` mask of transformers: 0 for tokens, the lowest f32 for padding.
pub fn additive_padding_mask(g: &mut GraphBuilder, attention_mask: &Value) -> Value {
    let to = g.float_type();
    let m = g.cast(attention_mask, to);
    let one = g.scalar_f32(1.0);
    let inverted = g.sub(&one, &m);
    let lowest = g.scalar_f32(f32::MIN);
    let additive = g.mul(&inverted, &lowest);
    g.unsqueeze(&additive, &[1, 2])
}
