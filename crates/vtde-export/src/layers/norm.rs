//! Layer normalization, with its scale and bias kept in f32 whatever the graph's
//! precision (its sums overflow f16), and the epsilon each architecture configures.

use super::weights::WeightScope;
use crate::error::Result;
use crate::onnx::{GraphBuilder, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_util::{graph, initializer, op_types, weights};
    use crate::onnx::builder::Precision;
    use crate::onnx::proto::DataType;
    use crate::onnx::Dim;

    fn emit(precision: Precision, epsilon: f32) -> crate::onnx::proto::GraphProto {
        let w = weights(&[("ln.weight", &[4]), ("ln.bias", &[4])]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::with_precision("t", precision);
        let x = g.input("x", DataType::Float, &[Dim::Dynamic("b"), Dim::Fixed(4)]);
        LayerNorm::load(&mut g, &scope, "ln", 4, epsilon)
            .unwrap()
            .forward(&mut g, &x);
        graph(g)
    }

    #[test]
    fn layer_norm_carries_its_epsilon_over_the_last_axis() {
        for epsilon in [1e-5, 1e-12] {
            let graph = emit(Precision::Fp32, epsilon);
            assert_eq!(op_types(&graph), ["LayerNormalization"]);
            let node = &graph.node[0];
            assert_eq!(node.input, ["x", "ln.weight", "ln.bias"]);
            let attr = |name: &str| node.attribute.iter().find(|a| a.name == name).unwrap();
            assert_eq!(attr("epsilon").f, epsilon);
            assert_eq!(attr("axis").i, -1);
        }
    }

    #[test]
    fn layer_norm_runs_in_f32_with_f32_parameters_in_an_fp16_graph() {
        let graph = emit(Precision::Fp16, 1e-6);
        // Input cast to f16 on entry, then to f32 around the norm and back.
        assert_eq!(
            op_types(&graph),
            ["Cast", "Cast", "LayerNormalization", "Cast"]
        );
        for name in ["ln.weight", "ln.bias"] {
            let t = initializer(&graph, name);
            assert_eq!(t.data_type, DataType::Float as i32, "{name}");
            assert_eq!(t.dims, [4]);
        }
    }

    #[test]
    fn layer_norm_checks_its_parameter_size() {
        let w = weights(&[("ln.weight", &[4]), ("ln.bias", &[4])]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::new("t");
        assert!(LayerNorm::load(&mut g, &scope, "ln", 8, 1e-5).is_err());
    }
}
