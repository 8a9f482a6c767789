//! The activation functions of transformers' `ACT2FN` that the towers use, mapped from
//! a config's `hidden_act` name onto standard ONNX ops (in the forms ONNX Runtime
//! fuses). A leaf: element-wise, no weights.

use crate::onnx::{GraphBuilder, Value};

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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::layers::test_util::{graph, op_types};
    use crate::onnx::proto::{DataType, GraphProto};
    use crate::onnx::Dim;

    const ALL: [Activation; 6] = [
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::QuickGelu,
        Activation::Relu,
        Activation::Tanh,
        Activation::Silu,
    ];

    fn emit(activation: Activation) -> GraphProto {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DataType::Float, &[Dim::Dynamic("n")]);
        let y = activation.forward(&mut g, &x);
        g.output(&y, "y", DataType::Float, &[Dim::Dynamic("n")]);
        graph(g)
    }

    /// erf by Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7).
    fn erf(x: f64) -> f64 {
        let t = 1.0 / (1.0 + 0.3275911 * x.abs());
        let poly = t
            * (0.254829592
                + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        (1.0 - poly * (-x * x).exp()).copysign(x)
    }

    /// Evaluates the element-wise graph on a scalar `x`.
    fn run(graph: &GraphProto, x: f64) -> f64 {
        let mut values: HashMap<&str, f64> = HashMap::from([("x", x)]);
        for t in &graph.initializer {
            assert!(t.dims.is_empty(), "scalar constants only");
            let v = f32::from_le_bytes(t.raw_data.as_slice().try_into().unwrap());
            values.insert(&t.name, f64::from(v));
        }
        for node in &graph.node {
            let arg = |i: usize| values[node.input[i].as_str()];
            let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
            let y = match node.op_type.as_str() {
                "Add" => arg(0) + arg(1),
                "Sub" => arg(0) - arg(1),
                "Mul" => arg(0) * arg(1),
                "Div" => arg(0) / arg(1),
                "Erf" => erf(arg(0)),
                "Tanh" => arg(0).tanh(),
                "Sigmoid" => sigmoid(arg(0)),
                "Relu" => arg(0).max(0.0),
                "Identity" => arg(0),
                op => panic!("unexpected op {op}"),
            };
            values.insert(&node.output[0], y);
        }
        values["y"]
    }

    #[test]
    fn hidden_act_names_map_to_their_activation() {
        for (name, activation) in [
            ("gelu", Activation::Gelu),
            ("gelu_new", Activation::GeluTanh),
            ("gelu_pytorch_tanh", Activation::GeluTanh),
            ("gelu_fast", Activation::GeluTanh),
            ("quick_gelu", Activation::QuickGelu),
            ("relu", Activation::Relu),
            ("tanh", Activation::Tanh),
            ("silu", Activation::Silu),
            ("swish", Activation::Silu),
        ] {
            assert_eq!(Activation::from_hf(name), Some(activation), "{name}");
            assert!(Activation::SUPPORTED.contains(name), "{name} not listed");
        }
        for unknown in ["", "GELU", "gelu_10", "leaky_relu"] {
            assert_eq!(Activation::from_hf(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn each_activation_emits_its_ops() {
        let expected: [&[&str]; 6] = [
            &["Div", "Erf", "Add", "Mul", "Mul"],
            &[
                "Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul",
            ],
            &["Mul", "Sigmoid", "Mul"],
            &["Relu"],
            &["Tanh"],
            &["Sigmoid", "Mul"],
        ];
        for (activation, ops) in ALL.into_iter().zip(expected) {
            let graph = emit(activation);
            let got = op_types(&graph);
            // The last node is the output's Identity.
            assert_eq!(got[..got.len() - 1], *ops, "{activation:?}");
        }
    }

    #[test]
    fn each_activation_computes_its_definition() {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let definitions: [fn(f64) -> f64; 6] = [
            |x| x * 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            |x| {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x.powi(3))).tanh())
            },
            |x| x / (1.0 + (-1.702 * x).exp()),
            |x| x.max(0.0),
            f64::tanh,
            |x| x / (1.0 + (-x).exp()),
        ];
        for (activation, definition) in ALL.into_iter().zip(definitions) {
            let graph = emit(activation);
            for x in [-3.0, -1.0, -0.25, 0.0, 0.5, 1.0, 2.5] {
                let (got, want) = (run(&graph, x), definition(x));
                assert!(
                    (got - want).abs() < 1e-6,
                    "{activation:?}({x}) = {got}, want {want}"
                );
            }
        }
        // GELU is x·Φ(x): Φ(1) = 0.8413447 (the normal table).
        let gelu = emit(Activation::Gelu);
        assert!((run(&gelu, 1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((run(&gelu, -1.0) + 0.158_655_3).abs() < 1e-6);
        // quick_gelu is x·σ(1.702·x).
        let quick = emit(Activation::QuickGelu);
        assert!((run(&quick, 2.0) - 2.0 * sigmoid(3.404)).abs() < 1e-6);
    }
}
