//! One transformer encoder layer, assembled from attention, the MLP and two layer norms,
//! and the parameters that are all that distinguishes the architectures' layers: where
//! they normalize ([`NormPlacement`]), what their weights are called ([`LayerNames`]),
//! their sizes ([`LayerShape`]) and BEiT's optional branch scales.

use super::activation::Activation;
use super::attention::{Attention, AttentionNames};
use super::mlp::Mlp;
use super::norm::LayerNorm;
use super::weights::WeightScope;
use crate::error::Result;
use crate::onnx::{GraphBuilder, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Weights;
    use crate::layers::test_util::{graph, op_types, weights};
    use crate::onnx::proto::{DataType, GraphProto, NodeProto};
    use crate::onnx::Dim;

    const NAMES: LayerNames = LayerNames {
        attention: AttentionNames {
            query: "attn.q",
            key: "attn.k",
            value: "attn.v",
            output: "attn.o",
        },
        fc1: "mlp.fc1",
        fc2: "mlp.fc2",
        norm1: "ln1",
        norm2: "ln2",
    };

    fn shape(placement: NormPlacement) -> LayerShape {
        LayerShape {
            hidden: 4,
            heads: 2,
            intermediate: 6,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            qkv_bias: [true; 3],
            placement,
        }
    }

    fn layer_weights() -> Weights {
        weights(&[
            ("l.attn.q.weight", &[4, 4]),
            ("l.attn.q.bias", &[4]),
            ("l.attn.k.weight", &[4, 4]),
            ("l.attn.k.bias", &[4]),
            ("l.attn.v.weight", &[4, 4]),
            ("l.attn.v.bias", &[4]),
            ("l.attn.o.weight", &[4, 4]),
            ("l.attn.o.bias", &[4]),
            ("l.mlp.fc1.weight", &[6, 4]),
            ("l.mlp.fc1.bias", &[6]),
            ("l.mlp.fc2.weight", &[4, 6]),
            ("l.mlp.fc2.bias", &[4]),
            ("l.ln1.weight", &[4]),
            ("l.ln1.bias", &[4]),
            ("l.ln2.weight", &[4]),
            ("l.ln2.bias", &[4]),
        ])
    }

    fn emit(placement: NormPlacement, scaled: bool) -> GraphProto {
        let w = layer_weights();
        let scope = WeightScope::new(&w, "l.", &[]);
        let mut g = GraphBuilder::new("t");
        let dims = [Dim::Dynamic("b"), Dim::Dynamic("s"), Dim::Fixed(4)];
        let x = g.input("x", DataType::Float, &dims);
        let layer_scale = scaled.then(|| {
            (
                g.weight("lambda_1", &[4], &[1.0; 4]),
                g.weight("lambda_2", &[4], &[1.0; 4]),
            )
        });
        let layer = EncoderLayer::load(&mut g, &scope, &NAMES, &shape(placement), layer_scale);
        layer.unwrap().forward(&mut g, &x, None);
        graph(g)
    }

    /// The node that produces `value`.
    fn producer<'a>(graph: &'a GraphProto, value: &str) -> &'a NodeProto {
        graph.node.iter().find(|n| n.output[0] == value).unwrap()
    }

    /// The `[norm1, norm2]` nodes, by their scale weight.
    fn norms(graph: &GraphProto) -> [&NodeProto; 2] {
        ["l.ln1.weight", "l.ln2.weight"].map(|w| {
            graph
                .node
                .iter()
                .find(|n| n.op_type == "LayerNormalization" && n.input[1] == w)
                .unwrap()
        })
    }

    #[test]
    fn a_pre_norm_layer_normalizes_each_branch_input_and_adds_to_the_residual() {
        let graph = emit(NormPlacement::Pre, false);
        let [ln1, ln2] = norms(&graph);
        // x + attn(ln1(x)): norm1 reads x itself.
        assert_eq!(ln1.input[0], "x");
        assert_eq!(graph.node[0].op_type, "LayerNormalization");
        // h + mlp(ln2(h)), with h = x + attn(…).
        let h = producer(&graph, &ln2.input[0]);
        assert_eq!(h.op_type, "Add");
        assert_eq!(h.input[0], "x");
        let out = graph.node.last().unwrap();
        assert_eq!(out.op_type, "Add");
        assert_eq!(out.input[0], h.output[0]);
        // The MLP branch ends in fc2's bias.
        assert_eq!(producer(&graph, &out.input[1]).input[1], "l.mlp.fc2.bias");
    }

    #[test]
    fn a_post_norm_layer_normalizes_after_each_residual_sum() {
        let graph = emit(NormPlacement::Post, false);
        let [ln1, ln2] = norms(&graph);
        // ln1(x + attn(x)): attention reads x directly.
        assert_eq!(graph.node[0].op_type, "MatMul");
        assert_eq!(graph.node[0].input[0], "x");
        let h = producer(&graph, &ln1.input[0]);
        assert_eq!(h.op_type, "Add");
        assert_eq!(h.input[0], "x");
        // ln2(h + mlp(h)) is the layer's output.
        assert_eq!(graph.node.last().unwrap(), ln2);
        let o = producer(&graph, &ln2.input[0]);
        assert_eq!(o.op_type, "Add");
        assert_eq!(o.input[0], ln1.output[0]);
        assert_eq!(
            ln1.attribute
                .iter()
                .find(|a| a.name == "epsilon")
                .unwrap()
                .f,
            1e-5
        );
    }

    #[test]
    fn layer_scales_multiply_each_branch_before_its_residual_add() {
        let plain = op_types(&emit(NormPlacement::Pre, false)).len();
        let graph = emit(NormPlacement::Pre, true);
        assert_eq!(graph.node.len(), plain + 2);
        let [_, ln2] = norms(&graph);
        let h = producer(&graph, &ln2.input[0]);
        let attention = producer(&graph, &h.input[1]);
        assert_eq!(
            (attention.op_type.as_str(), attention.input[1].as_str()),
            ("Mul", "lambda_1")
        );
        let out = graph.node.last().unwrap();
        let mlp = producer(&graph, &out.input[1]);
        assert_eq!(
            (mlp.op_type.as_str(), mlp.input[1].as_str()),
            ("Mul", "lambda_2")
        );
    }

    #[test]
    fn a_layer_reports_its_missing_weights_by_full_name() {
        let w = weights(&[]);
        let scope = WeightScope::new(&w, "encoder.layer.3.", &[]);
        let mut g = GraphBuilder::new("t");
        let err = EncoderLayer::load(&mut g, &scope, &NAMES, &shape(NormPlacement::Pre), None)
            .unwrap_err();
        assert!(
            err.to_string().contains("encoder.layer.3.attn.q.weight"),
            "{err}"
        );
    }
}
