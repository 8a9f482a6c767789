//! Multi-head self-attention, and the additive padding mask it takes: the block that
//! mixes tokens. Its four projections are [`Linear`] layers, so an int8 graph quantizes
//! the block's input once for the query, key and value projections together.

use super::linear::Linear;
use super::quantize::quantize_input;
use super::weights::WeightScope;
use crate::error::{Error, Result};
use crate::onnx::{GraphBuilder, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Weights;
    use crate::layers::test_util::{graph, has_initializer, initializer, op_types, weights};
    use crate::onnx::builder::Precision;
    use crate::onnx::proto::{DataType, GraphProto};
    use crate::onnx::Dim;

    const NAMES: AttentionNames = AttentionNames {
        query: "q",
        key: "k",
        value: "v",
        output: "o",
    };

    fn attention_weights(hidden: usize, key_bias: bool) -> Weights {
        let h = hidden;
        let mut tensors: Vec<(String, Vec<usize>)> = Vec::new();
        for m in ["q", "k", "v", "o"] {
            tensors.push((format!("{m}.weight"), vec![h, h]));
            if m != "k" || key_bias {
                tensors.push((format!("{m}.bias"), vec![h]));
            }
        }
        let refs: Vec<(&str, &[usize])> = tensors
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_slice()))
            .collect();
        weights(&refs)
    }

    fn emit(precision: Precision, hidden: usize, heads: usize, masked: bool) -> GraphProto {
        let w = attention_weights(hidden, true);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::with_precision("t", precision);
        let dims = [
            Dim::Dynamic("b"),
            Dim::Dynamic("s"),
            Dim::Fixed(hidden as i64),
        ];
        let x = g.input("x", DataType::Float, &dims);
        let mask = masked.then(|| g.input("mask", DataType::Float, &dims));
        let attention = Attention::load(&mut g, &scope, NAMES, hidden, heads, [true; 3]).unwrap();
        attention.forward(&mut g, &x, mask.as_ref());
        graph(g)
    }

    fn scalar_f32(graph: &GraphProto, name: &str) -> f32 {
        f32::from_le_bytes(
            initializer(graph, name)
                .raw_data
                .as_slice()
                .try_into()
                .unwrap(),
        )
    }

    #[test]
    fn hidden_sizes_not_divisible_by_the_heads_are_rejected_before_any_weight_is_read() {
        // No weights at all: a size error, not a missing weight.
        let w = weights(&[]);
        let scope = WeightScope::new(&w, "", &[]);
        for (hidden, heads) in [(10, 3), (64, 0), (6, 4)] {
            let mut g = GraphBuilder::new("t");
            match Attention::load(&mut g, &scope, NAMES, hidden, heads, [true; 3]) {
                Err(Error::Config { problem, .. }) => {
                    assert!(problem.contains(&hidden.to_string()), "{problem}");
                    assert!(
                        problem.contains(&format!("{heads} attention heads")),
                        "{problem}"
                    );
                }
                other => panic!("{hidden}/{heads}: expected a config error, got {other:?}"),
            }
        }
        let mut g = GraphBuilder::new("t");
        assert!(matches!(
            Attention::load(&mut g, &scope, NAMES, 12, 3, [true; 3]),
            Err(Error::MissingWeight { .. })
        ));
    }

    #[test]
    fn attention_splits_heads_scales_by_the_head_size_and_softmaxes_the_last_axis() {
        let (hidden, heads) = (8, 2);
        let graph = emit(Precision::Fp32, hidden, heads, false);
        let ops = op_types(&graph);
        assert_eq!(
            ops,
            [
                "MatMul",
                "Add",
                "MatMul",
                "Add",
                "MatMul",
                "Add", // q, k, v
                "Reshape",
                "Transpose",
                "Reshape",
                "Transpose",
                "Reshape",
                "Transpose",
                "MatMul",
                "Mul",
                "Softmax",
                "MatMul",
                "Transpose",
                "Reshape", // heads
                "MatMul",
                "Add", // output
            ]
        );
        let node = |i: usize| &graph.node[i];
        // Each projection is split into [batch, seq, heads, head_dim].
        let split = initializer(&graph, &node(6).input[1]);
        let split: Vec<i64> = split
            .raw_data
            .chunks(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(split, [0, 0, 2, 4]);
        assert_eq!(node(7).attribute[0].ints, [0, 2, 1, 3], "q: [b, h, s, d]");
        assert_eq!(node(9).attribute[0].ints, [0, 2, 3, 1], "k: [b, h, d, s]");
        assert_eq!(node(11).attribute[0].ints, [0, 2, 1, 3], "v: [b, h, s, d]");
        // Scores are scaled by 1/√head_dim = 1/2.
        assert_eq!(scalar_f32(&graph, &node(13).input[1]), 0.5);
        assert_eq!(node(14).attribute[0].name, "axis");
        assert_eq!(node(14).attribute[0].i, -1);
        for name in ["q.weight.T", "k.weight.T", "v.weight.T", "o.weight.T"] {
            assert_eq!(initializer(&graph, name).dims, [8, 8]);
        }
    }

    #[test]
    fn a_mask_is_added_to_the_scaled_scores() {
        let graph = emit(Precision::Fp32, 8, 2, true);
        let ops = op_types(&graph);
        let softmax = ops.iter().position(|&op| op == "Softmax").unwrap();
        assert_eq!(ops[softmax - 2..softmax], ["Mul", "Add"]);
        assert_eq!(graph.node[softmax - 1].input[1], "mask");
    }

    #[test]
    fn an_int8_attention_quantizes_its_input_once_for_query_key_and_value() {
        let graph = emit(Precision::Int8, 64, 4, false);
        let ops = op_types(&graph);
        let count = |op: &str| ops.iter().filter(|&&o| o == op).count();
        // Once for q, k and v together, once for the output projection.
        assert_eq!(count("QuantizeLinear"), 2);
        assert_eq!(count("MatMulInteger"), 4);
        // Head size 16: scores scaled by 1/4.
        let scalar_factors: Vec<f32> = graph
            .node
            .iter()
            .filter(|n| n.op_type == "Mul")
            .filter_map(|n| graph.initializer.iter().find(|t| t.name == n.input[1]))
            .filter(|t| t.dims.is_empty() && t.data_type == DataType::Float as i32)
            .map(|t| scalar_f32(&graph, &t.name))
            .collect();
        assert_eq!(scalar_factors, [0.25]);
    }

    #[test]
    fn a_key_without_bias_needs_no_key_bias_weight() {
        let w = attention_weights(8, false);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::new("t");
        Attention::load(&mut g, &scope, NAMES, 8, 2, [true, false, true]).unwrap();
        let graph = graph(g);
        assert!(!has_initializer(&graph, "k.bias"));
        assert!(has_initializer(&graph, "q.bias") && has_initializer(&graph, "v.bias"));
        // With a key bias asked for, its absence is an error.
        let mut g = GraphBuilder::new("t");
        let err = Attention::load(&mut g, &scope, NAMES, 8, 2, [true; 3]).unwrap_err();
        assert!(err.to_string().contains("k.bias"), "{err}");
    }

    fn emit_mask(precision: Precision) -> GraphProto {
        let mut g = GraphBuilder::with_precision("t", precision);
        let m = g.input(
            "attention_mask",
            DataType::Int64,
            &[Dim::Dynamic("b"), Dim::Dynamic("s")],
        );
        additive_padding_mask(&mut g, &m);
        graph(g)
    }

    #[test]
    fn the_padding_mask_is_zero_for_tokens_and_the_lowest_float_for_padding() {
        let graph = emit_mask(Precision::Fp32);
        assert_eq!(op_types(&graph), ["Cast", "Sub", "Mul", "Unsqueeze"]);
        let [cast, sub, mul, unsqueeze] = [0, 1, 2, 3].map(|i| &graph.node[i]);
        assert_eq!(cast.attribute[0].i, DataType::Float as i64);
        // additive = (1 - mask) · lowest.
        assert_eq!(sub.input[1], cast.output[0]);
        let one = scalar_f32(&graph, &sub.input[0]);
        assert_eq!(mul.input[0], sub.output[0]);
        let lowest = scalar_f32(&graph, &mul.input[1]);
        assert_eq!((one, lowest), (1.0, f32::MIN));
        let additive = |mask: f32| (one - mask) * lowest;
        assert_eq!(additive(1.0), 0.0, "a token is kept");
        assert_eq!(additive(0.0), f32::MIN, "padding is masked");
        // [batch, seq] → [batch, 1, 1, seq].
        let axes = initializer(&graph, &unsqueeze.input[1]);
        let axes: Vec<i64> = axes
            .raw_data
            .chunks(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(axes, [1, 2]);
    }

    #[test]
    fn the_padding_mask_saturates_to_the_lowest_half_in_an_fp16_graph() {
        let graph = emit_mask(Precision::Fp16);
        let [cast, _, mul] = [0, 1, 2].map(|i| &graph.node[i]);
        assert_eq!(cast.attribute[0].i, DataType::Float16 as i64);
        let lowest = initializer(&graph, &mul.input[1]);
        assert_eq!(lowest.data_type, DataType::Float16 as i32);
        // -65504 is the most negative finite f16: sign 1, exponent 11110, mantissa all 1.
        assert_eq!(
            u16::from_le_bytes(lowest.raw_data.as_slice().try_into().unwrap()),
            0xFBFF
        );
    }
}
