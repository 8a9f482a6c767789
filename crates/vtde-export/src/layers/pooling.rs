//! Turning a tower's token sequence into one vector: the first (class) token, and
//! BERT/ViT's pooler, a dense layer and activation on it.

use super::activation::Activation;
use super::linear::Linear;
use super::weights::WeightScope;
use crate::error::Result;
use crate::onnx::{GraphBuilder, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_util::{graph, initializer, op_types, weights};
    use crate::onnx::proto::DataType;
    use crate::onnx::Dim;

    fn sequence(g: &mut GraphBuilder) -> Value {
        g.input(
            "seq",
            DataType::Float,
            &[Dim::Dynamic("b"), Dim::Dynamic("s"), Dim::Fixed(4)],
        )
    }

    #[test]
    fn first_token_gathers_index_zero_of_the_sequence_axis() {
        let mut g = GraphBuilder::new("t");
        let x = sequence(&mut g);
        first_token(&mut g, &x);
        let graph = graph(g);
        assert_eq!(op_types(&graph), ["Gather"]);
        let gather = &graph.node[0];
        assert_eq!(gather.input[0], "seq");
        assert_eq!(gather.attribute[0].name, "axis");
        assert_eq!(gather.attribute[0].i, 1);
        // A scalar index (so the axis is dropped): 0.
        let index = initializer(&graph, &gather.input[1]);
        assert!(index.dims.is_empty());
        assert_eq!(index.data_type, DataType::Int64 as i32);
        assert_eq!(index.raw_data, 0i64.to_le_bytes());
    }

    #[test]
    fn pooler_is_an_activated_dense_layer_on_the_first_token() {
        let w = weights(&[
            ("pooler.dense.weight", &[3, 4]),
            ("pooler.dense.bias", &[3]),
        ]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::new("t");
        let x = sequence(&mut g);
        Pooler::load(&mut g, &scope, "pooler.dense", 4, 3, Activation::Tanh)
            .unwrap()
            .forward(&mut g, &x);
        let graph = graph(g);
        assert_eq!(op_types(&graph), ["Gather", "MatMul", "Add", "Tanh"]);
        assert_eq!(initializer(&graph, "pooler.dense.weight.T").dims, [4, 3]);
    }
}
