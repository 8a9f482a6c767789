//! Helpers shared by the unit tests of the layer modules: in-memory weights, and a look
//! at the graph a piece emitted. A leaf: it imports no layer module, so every layer's
//! tests can use it without an import cycle.

use crate::checkpoint::{Tensor, Weights};
use crate::onnx::proto::{GraphProto, TensorProto};
use crate::onnx::GraphBuilder;

/// Weights holding `tensors`, each `(name, shape)`, filled with `i / 100` (the f32
/// nearest `0, 0.01, 0.02, …`) so that no two elements are equal.
pub fn weights(tensors: &[(&str, &[usize])]) -> Weights {
    Weights::from_tensors(tensors.iter().map(|(name, shape)| {
        let n = shape.iter().product::<usize>();
        let data = (0..n).map(|i| i as f32 / 100.0).collect();
        (
            (*name).to_owned(),
            Tensor {
                shape: shape.to_vec(),
                data,
            },
        )
    }))
}

/// The graph `g` has built so far.
pub fn graph(g: GraphBuilder) -> GraphProto {
    g.finish("", &[])
        .graph
        .expect("finish always sets the graph")
}

/// The op types of the graph's nodes, in order.
pub fn op_types(graph: &GraphProto) -> Vec<&str> {
    graph.node.iter().map(|n| n.op_type.as_str()).collect()
}

/// The initializer called `name`.
pub fn initializer<'a>(graph: &'a GraphProto, name: &str) -> &'a TensorProto {
    graph
        .initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer `{name}`"))
}

/// Whether the graph has an initializer called `name`.
pub fn has_initializer(graph: &GraphProto, name: &str) -> bool {
    graph.initializer.iter().any(|t| t.name == name)
}
