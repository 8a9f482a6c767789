//! The linear layer, `y = x·Wᵀ + b`, the one piece that carries almost all of a tower's
//! weights, and so the one that differs between precisions: a float `MatMul`, or in an
//! int8 graph an integer matmul on a rotated, quantized input (the recipe itself is in
//! [`super::quantize`]).

use super::quantize::{quantize_input, quantize_weight, rotation_block, QuantizedInput};
use super::weights::WeightScope;
use crate::error::Result;
use crate::onnx::builder::Precision;
use crate::onnx::proto::DataType;
use crate::onnx::{GraphBuilder, Value};

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
                // Cast → Mul(Mul(a_scale, column scale)) is the shape ONNX Runtime fuses
                // into its integer-matmul-to-float kernel (a_scale: see `quantize_input`).
                let product = g.cast(&product, DataType::Float);
                let column_scale = g.mul(&input.unit_scale, scale);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_util::{graph, has_initializer, initializer, op_types, weights};
    use crate::onnx::Dim;

    fn input(g: &mut GraphBuilder, width: usize) -> Value {
        g.input(
            "x",
            DataType::Float,
            &[Dim::Dynamic("batch"), Dim::Fixed(width as i64)],
        )
    }

    fn f32s(raw: &[u8]) -> Vec<f32> {
        raw.chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn a_float_linear_with_bias_is_matmul_then_add_on_the_transposed_weight() {
        let w = weights(&[("m.fc.weight", &[3, 2]), ("m.fc.bias", &[3])]);
        let scope = WeightScope::new(&w, "m.", &[]);
        let mut g = GraphBuilder::new("t");
        let x = input(&mut g, 2);
        let linear = Linear::load(&mut g, &scope, "fc", 2, 3, true).unwrap();
        assert!(!linear.is_quantized());
        linear.forward(&mut g, &x, 2);
        let graph = graph(g);
        assert_eq!(op_types(&graph), ["MatMul", "Add"]);
        let weight_t = initializer(&graph, "m.fc.weight.T");
        assert_eq!(weight_t.dims, [2, 3]);
        // W = [[0, .01], [.02, .03], [.04, .05]] (out × in), so Wᵀ row by row is:
        assert_eq!(
            f32s(&weight_t.raw_data),
            [0.0, 0.02, 0.04, 0.01, 0.03, 0.05]
        );
        assert_eq!(initializer(&graph, "m.fc.bias").dims, [3]);
        let add = &graph.node[1];
        assert_eq!(
            add.input,
            [graph.node[0].output[0].clone(), "m.fc.bias".into()]
        );
        assert_eq!(graph.node[0].input, ["x", "m.fc.weight.T"]);
    }

    #[test]
    fn a_float_linear_without_bias_is_one_matmul_and_needs_no_bias_weight() {
        let w = weights(&[("fc.weight", &[3, 2])]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::new("t");
        let x = input(&mut g, 2);
        Linear::load(&mut g, &scope, "fc", 2, 3, false)
            .unwrap()
            .forward(&mut g, &x, 2);
        let graph = graph(g);
        assert_eq!(op_types(&graph), ["MatMul"]);
        assert_eq!(graph.initializer.len(), 1);
        assert!(!has_initializer(&graph, "fc.bias"));
    }

    #[test]
    fn a_linear_with_a_missing_bias_fails() {
        let w = weights(&[("fc.weight", &[3, 2])]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::new("t");
        let err = Linear::load(&mut g, &scope, "fc", 2, 3, true).unwrap_err();
        assert!(err.to_string().contains("fc.bias"), "{err}");
    }

    #[test]
    fn a_linear_checks_its_weight_is_out_by_in() {
        let w = weights(&[("fc.weight", &[2, 3])]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::new("t");
        assert!(Linear::load(&mut g, &scope, "fc", 2, 3, false).is_err());
    }

    #[test]
    fn an_fp16_linear_stores_its_weight_in_f16() {
        let w = weights(&[("fc.weight", &[3, 2]), ("fc.bias", &[3])]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::with_precision("t", Precision::Fp16);
        Linear::load(&mut g, &scope, "fc", 2, 3, true).unwrap();
        let graph = graph(g);
        for name in ["fc.weight.T", "fc.bias"] {
            let t = initializer(&graph, name);
            assert_eq!(t.data_type, DataType::Float16 as i32, "{name}");
            assert_eq!(
                t.raw_data.len(),
                2 * t.dims.iter().product::<i64>() as usize
            );
        }
    }

    #[test]
    fn an_int8_linear_stores_int8_columns_with_scales_and_zero_points() {
        let (i, o) = (64, 5);
        let w = weights(&[("fc.weight", &[o, i]), ("fc.bias", &[o])]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::with_precision("t", Precision::Int8);
        let x = input(&mut g, i);
        let linear = Linear::load(&mut g, &scope, "fc", i, o, true).unwrap();
        assert!(linear.is_quantized());
        linear.forward(&mut g, &x, i);
        let graph = graph(g);

        let q = initializer(&graph, "fc.weight.T.int8");
        assert_eq!(
            (q.dims.as_slice(), q.data_type),
            (&[64, 5][..], DataType::Int8 as i32)
        );
        let scale = initializer(&graph, "fc.weight.T.scale");
        assert_eq!(
            (scale.dims.as_slice(), scale.data_type),
            (&[5][..], DataType::Float as i32)
        );
        let zero = initializer(&graph, "fc.weight.T.zero_point");
        assert_eq!(zero.dims, [5]);
        assert_eq!(zero.data_type, DataType::Int8 as i32);
        assert_eq!(zero.raw_data, [0; 5]);
        assert!(!has_initializer(&graph, "fc.weight.T"));

        let ops = op_types(&graph);
        let start = ops.iter().position(|&op| op == "MatMulInteger").unwrap();
        // The input is rotated and quantized first (see `quantize`).
        assert_eq!(ops[..2], ["Reshape", "MatMul"]);
        assert!(ops[..start].contains(&"QuantizeLinear"));
        assert_eq!(
            ops[start..],
            [
                "MatMulInteger",
                "Cast",
                "Mul",
                "Mul",
                "Mul",
                "Concat",
                "Reshape",
                "Add"
            ]
        );
        // Mul(a_scale, column scale) with a_scale computed at run time (the input's unit
        // scale), so that ONNX Runtime's fusion into MatMulIntegerToFloat finds the node.
        let column_scale = &graph.node[start + 2];
        assert_eq!(column_scale.input[1], "fc.weight.T.scale");
        assert!(graph
            .node
            .iter()
            .any(|n| n.op_type == "Div" && n.output[0] == column_scale.input[0]));
        let matmul = &graph.node[start];
        assert_eq!(matmul.input[1], "fc.weight.T.int8");
        assert_eq!(matmul.input[3], "fc.weight.T.zero_point");
    }

    #[test]
    fn an_int8_linear_too_narrow_to_rotate_stays_float() {
        // Width 4 rotates in blocks of 4, under the 8 that quantization needs.
        let w = weights(&[("fc.weight", &[3, 4])]);
        let scope = WeightScope::new(&w, "", &[]);
        let mut g = GraphBuilder::with_precision("t", Precision::Int8);
        let x = input(&mut g, 4);
        let linear = Linear::load(&mut g, &scope, "fc", 4, 3, false).unwrap();
        assert!(!linear.is_quantized());
        linear.forward(&mut g, &x, 4);
        let graph = graph(g);
        assert_eq!(op_types(&graph), ["MatMul"]);
        assert_eq!(
            initializer(&graph, "fc.weight.T").data_type,
            DataType::Float as i32
        );
    }
}
