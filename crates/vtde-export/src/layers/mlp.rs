//! The feed-forward block of an encoder layer, `fc2(act(fc1(x)))`: the block that
//! transforms each token on its own, and holds most of a layer's weights.

use super::activation::Activation;
use super::linear::Linear;
use super::weights::WeightScope;
use crate::error::Result;
use crate::onnx::{GraphBuilder, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_util::{graph, initializer, op_types, weights};
    use crate::onnx::proto::DataType;
    use crate::onnx::Dim;

    #[test]
    fn mlp_is_fc1_activation_fc2_with_the_intermediate_width_between() {
        let w = weights(&[
            ("fc1.weight", &[6, 4]),
            ("fc1.bias", &[6]),
            ("fc2.weight", &[4, 6]),
            ("fc2.bias", &[4]),
        ]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DataType::Float, &[Dim::Dynamic("b"), Dim::Fixed(4)]);
        Mlp::load(&mut g, &scope, ("fc1", "fc2"), 4, 6, Activation::Relu)
            .unwrap()
            .forward(&mut g, &x);
        let graph = graph(g);
        assert_eq!(op_types(&graph), ["MatMul", "Add", "Relu", "MatMul", "Add"]);
        assert_eq!(initializer(&graph, "fc1.weight.T").dims, [4, 6]);
        assert_eq!(initializer(&graph, "fc2.weight.T").dims, [6, 4]);
        // Each node consumes the one before it.
        for pair in graph.node.windows(2) {
            assert_eq!(pair[1].input[0], pair[0].output[0]);
        }
    }

    #[test]
    fn mlp_checks_the_intermediate_width() {
        let w = weights(&[
            ("fc1.weight", &[6, 4]),
            ("fc1.bias", &[6]),
            ("fc2.weight", &[4, 6]),
            ("fc2.bias", &[4]),
        ]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::new("t");
        let err = Mlp::load(&mut g, &scope, ("fc1", "fc2"), 4, 8, Activation::Gelu).unwrap_err();
        assert!(err.to_string().contains("fc1.weight"), "{err}");
    }
}
