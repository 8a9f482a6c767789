//! A minimal builder for ONNX graphs: named values, initializers, nodes, and typed graph
//! inputs and outputs.
//!
//! Every method that adds a node returns the [`Value`] it produces, so graph code reads
//! like the forward pass it mirrors. Node and value names are made unique with a running
//! counter under the current scope (e.g. `text.layers.3.attention`), so that a graph opened
//! in Netron shows where each node came from.

use super::proto::{
    AttributeProto, AttributeType, DataType, Dimension, DimensionValue, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto,
    TensorTypeProto, TypeProto, ValueInfoProto,
};
use super::{IR_VERSION, OPSET};

/// A tensor in the graph under construction, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value(String);

impl Value {
    /// The tensor's name in the graph.
    #[cfg(test)]
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A size fixed at export time.
    Fixed(i64),
    /// A size chosen at run time, named (e.g. `batch`, `sequence`).
    Dynamic(&'static str),
}

/// An operator attribute under construction.
#[derive(Debug, Clone)]
pub struct Attr(AttributeProto);

impl Attr {
    pub fn int(name: &str, value: i64) -> Self {
        Self(AttributeProto {
            name: name.to_owned(),
            i: value,
            r#type: AttributeType::Int as i32,
            ..Default::default()
        })
    }

    pub fn float(name: &str, value: f32) -> Self {
        Self(AttributeProto {
            name: name.to_owned(),
            f: value,
            r#type: AttributeType::Float as i32,
            ..Default::default()
        })
    }

    /// A tensor-valued attribute (e.g. `ConstantOfShape`'s `value`).
    pub fn tensor(name: &str, elem: DataType, dims: &[usize], raw_data: Vec<u8>) -> Self {
        Self(AttributeProto {
            name: name.to_owned(),
            t: Some(TensorProto {
                dims: dims.iter().map(|&d| d as i64).collect(),
                data_type: elem as i32,
                name: String::new(),
                raw_data,
                ..Default::default()
            }),
            r#type: AttributeType::Tensor as i32,
            ..Default::default()
        })
    }

    pub fn ints(name: &str, values: &[i64]) -> Self {
        Self(AttributeProto {
            name: name.to_owned(),
            ints: values.to_vec(),
            r#type: AttributeType::Ints as i32,
            ..Default::default()
        })
    }
}

/// The numeric precision a graph is emitted in (the manifest's enum, so that a graph's
/// precision and its manifest entry cannot disagree):
/// - `Fp32`: everything in f32;
/// - `Fp16`: weights and activations in f16, for GPU execution providers; layer norm and
///   softmax run in f32 (their sums overflow f16), and the graph's inputs and outputs stay
///   f32, so the package contract does not change;
/// - `Int8`: the linear layers' weights in int8 (symmetric, per output channel),
///   activations quantized on the fly (`DynamicQuantizeLinear` → `MatMulInteger`, the
///   pattern ONNX Runtime fuses into its dynamic-quantized matmul kernel); everything else
///   f32.
pub use vtde_package::Precision;

/// Builds one ONNX graph.
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    precision: Precision,
    scope: Vec<String>,
    counter: usize,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
}

impl GraphBuilder {
    /// Starts an empty graph called `name`, in f32.
    pub fn new(name: &str) -> Self {
        Self::with_precision(name, Precision::Fp32)
    }

    /// Starts an empty graph called `name` in `precision`.
    pub fn with_precision(name: &str, precision: Precision) -> Self {
        Self {
            name: name.to_owned(),
            precision,
            scope: Vec::new(),
            counter: 0,
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Runs `body` with `name` pushed onto the naming scope.
    pub fn scoped<T>(&mut self, name: &str, body: impl FnOnce(&mut Self) -> T) -> T {
        self.scope.push(name.to_owned());
        let out = body(self);
        self.scope.pop();
        out
    }

    fn fresh_name(&mut self, stem: &str) -> String {
        self.counter += 1;
        if self.scope.is_empty() {
            format!("{stem}_{}", self.counter)
        } else {
            format!("{}/{stem}_{}", self.scope.join("."), self.counter)
        }
    }

    /// The graph's precision.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The element type of activations: f16 in an fp16 graph, else f32.
    pub fn float_type(&self) -> DataType {
        match self.precision {
            Precision::Fp16 => DataType::Float16,
            Precision::Fp32 | Precision::Int8 => DataType::Float,
        }
    }

    /// Declares a graph input. An f32 input of an fp16 graph is cast to f16 on entry.
    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> Value {
        self.inputs.push(value_info(name, elem, dims));
        let value = Value(name.to_owned());
        if elem == DataType::Float && self.float_type() != DataType::Float {
            let to = self.float_type();
            return self.cast(&value, to);
        }
        value
    }

    /// Declares `value` as a graph output called `name`. An f32 output of an fp16 graph
    /// is cast back to f32 on exit.
    pub fn output(&mut self, value: &Value, name: &str, elem: DataType, dims: &[Dim]) {
        let cast;
        let value = if elem == DataType::Float && self.float_type() != DataType::Float {
            cast = self.cast(value, DataType::Float);
            &cast
        } else {
            value
        };
        if value.0 != name {
            self.nodes.push(NodeProto {
                input: vec![value.0.clone()],
                output: vec![name.to_owned()],
                name: format!("output/{name}"),
                op_type: "Identity".to_owned(),
                ..Default::default()
            });
        }
        self.outputs.push(value_info(name, elem, dims));
    }

    /// Adds a weight under its own, unique, name, in the activation type
    /// ([`Self::float_type`]).
    pub fn weight(&mut self, name: &str, dims: &[usize], data: &[f32]) -> Value {
        match self.float_type() {
            DataType::Float16 => {
                // Out-of-range values saturate to ±65504 rather than become infinite
                // (the additive mask's lowest f32, notably).
                let raw = data
                    .iter()
                    .flat_map(|&x| half::f16::from_f32(x.clamp(-65504.0, 65504.0)).to_le_bytes())
                    .collect();
                self.push_initializer(name, DataType::Float16, dims, raw)
            }
            _ => self.weight_f32(name, dims, data),
        }
    }

    /// Adds an f32 weight whatever the graph's precision (layer norm parameters, which
    /// always run in f32).
    pub fn weight_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> Value {
        let raw = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push_initializer(name, DataType::Float, dims, raw)
    }

    /// An f32 constant shared by every node that asks for it by `name` (added once).
    pub fn shared_f32(
        &mut self,
        name: &str,
        dims: &[usize],
        data: impl FnOnce() -> Vec<f32>,
    ) -> Value {
        if self.initializers.iter().any(|t| t.name == name) {
            return Value(name.to_owned());
        }
        self.weight_f32(name, dims, &data())
    }

    /// Adds an int8 weight.
    pub fn weight_i8(&mut self, name: &str, dims: &[usize], data: &[i8]) -> Value {
        let raw = data.iter().map(|&x| x as u8).collect();
        self.push_initializer(name, DataType::Int8, dims, raw)
    }

    /// Adds a uint8 constant with a generated name.
    pub fn const_u8(&mut self, dims: &[usize], data: &[u8]) -> Value {
        let name = self.fresh_name("const");
        self.push_initializer(&name, DataType::Uint8, dims, data.to_vec())
    }

    /// Adds a small constant in the activation type, with a generated name.
    pub fn const_f32(&mut self, dims: &[usize], data: &[f32]) -> Value {
        let name = self.fresh_name("const");
        self.weight(&name, dims, data)
    }

    /// Adds a small i64 constant with a generated name.
    pub fn const_i64(&mut self, dims: &[usize], data: &[i64]) -> Value {
        let name = self.fresh_name("const");
        let raw = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push_initializer(&name, DataType::Int64, dims, raw)
    }

    /// An f32 scalar constant.
    pub fn scalar_f32(&mut self, x: f32) -> Value {
        self.const_f32(&[], &[x])
    }

    fn push_initializer(
        &mut self,
        name: &str,
        elem: DataType,
        dims: &[usize],
        raw_data: Vec<u8>,
    ) -> Value {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: elem as i32,
            name: name.to_owned(),
            raw_data,
            ..Default::default()
        });
        Value(name.to_owned())
    }

    /// Adds a node with one output and returns that output.
    pub fn node(&mut self, op_type: &str, inputs: &[&Value], attrs: Vec<Attr>) -> Value {
        let name = self.fresh_name(op_type);
        let output = Value(name.clone());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|v| v.0.clone()).collect(),
            output: vec![output.0.clone()],
            name,
            op_type: op_type.to_owned(),
            attribute: attrs.into_iter().map(|a| a.0).collect(),
            ..Default::default()
        });
        output
    }

    /// Finishes the graph into a model that imports [`OPSET`].
    pub fn finish(self, doc: &str, metadata: &[(&str, String)]) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "vtde-export".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            domain: String::new(),
            model_version: 1,
            doc_string: doc.to_owned(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: self.name,
                initializer: self.initializers,
                doc_string: String::new(),
                input: self.inputs,
                output: self.outputs,
                value_info: Vec::new(),
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            metadata_props: metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: (*k).to_owned(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    // ---- Operators used by the towers (ONNX opset 17 semantics). ----

    pub fn add(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Add", &[a, b], vec![])
    }

    pub fn sub(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Sub", &[a, b], vec![])
    }

    pub fn mul(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Mul", &[a, b], vec![])
    }

    pub fn div(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Div", &[a, b], vec![])
    }

    pub fn matmul(&mut self, a: &Value, b: &Value) -> Value {
        self.node("MatMul", &[a, b], vec![])
    }

    pub fn unary(&mut self, op_type: &str, x: &Value) -> Value {
        self.node(op_type, &[x], vec![])
    }

    /// Softmax; in f32 even in an fp16 graph (its sum overflows f16).
    pub fn softmax(&mut self, x: &Value, axis: i64) -> Value {
        self.in_f32(x, |g, x| {
            g.node("Softmax", &[x], vec![Attr::int("axis", axis)])
        })
    }

    /// Runs `body` on `x` in f32: in an fp16 graph, `x` is cast to f32 and the result
    /// back to f16.
    fn in_f32(&mut self, x: &Value, body: impl FnOnce(&mut Self, &Value) -> Value) -> Value {
        if self.float_type() == DataType::Float {
            return body(self, x);
        }
        let wide = self.cast(x, DataType::Float);
        let y = body(self, &wide);
        let to = self.float_type();
        self.cast(&y, to)
    }

    pub fn transpose(&mut self, x: &Value, perm: &[i64]) -> Value {
        self.node("Transpose", &[x], vec![Attr::ints("perm", perm)])
    }

    /// `Reshape` to a constant shape (`0` copies the input dimension, `-1` infers).
    pub fn reshape(&mut self, x: &Value, shape: &[i64]) -> Value {
        let shape = self.const_i64(&[shape.len()], shape);
        self.node("Reshape", &[x, &shape], vec![])
    }

    pub fn unsqueeze(&mut self, x: &Value, axes: &[i64]) -> Value {
        let axes = self.const_i64(&[axes.len()], axes);
        self.node("Unsqueeze", &[x, &axes], vec![])
    }

    pub fn concat(&mut self, parts: &[&Value], axis: i64) -> Value {
        self.node("Concat", parts, vec![Attr::int("axis", axis)])
    }

    pub fn gather(&mut self, data: &Value, indices: &Value, axis: i64) -> Value {
        self.node("Gather", &[data, indices], vec![Attr::int("axis", axis)])
    }

    /// `Shape(x)[start..end]` as an i64 vector.
    pub fn shape_slice(&mut self, x: &Value, start: i64, end: i64) -> Value {
        self.node(
            "Shape",
            &[x],
            vec![Attr::int("start", start), Attr::int("end", end)],
        )
    }

    /// `Slice` along `axes`, with starts and ends given as graph values.
    pub fn slice(&mut self, x: &Value, starts: &Value, ends: &Value, axes: &[i64]) -> Value {
        let axes = self.const_i64(&[axes.len()], axes);
        self.node("Slice", &[x, starts, ends, &axes], vec![])
    }

    pub fn expand(&mut self, x: &Value, shape: &Value) -> Value {
        self.node("Expand", &[x, shape], vec![])
    }

    pub fn cast(&mut self, x: &Value, to: DataType) -> Value {
        self.node("Cast", &[x], vec![Attr::int("to", to as i64)])
    }

    /// Mean over `axes`, keeping them (`ReduceMean`; opset 17 takes axes as an attribute).
    pub fn reduce_mean(&mut self, x: &Value, axes: &[i64]) -> Value {
        self.node(
            "ReduceMean",
            &[x],
            vec![Attr::ints("axes", axes), Attr::int("keepdims", 1)],
        )
    }

    pub fn squeeze(&mut self, x: &Value, axes: &[i64]) -> Value {
        let axes = self.const_i64(&[axes.len()], axes);
        self.node("Squeeze", &[x, &axes], vec![])
    }

    /// Index of the first maximum along `axis`, without keeping the axis.
    pub fn argmax(&mut self, x: &Value, axis: i64) -> Value {
        self.node(
            "ArgMax",
            &[x],
            vec![Attr::int("axis", axis), Attr::int("keepdims", 0)],
        )
    }

    /// Running sum along `axis` (inclusive).
    pub fn cumsum(&mut self, x: &Value, axis: i64) -> Value {
        let axis = self.const_i64(&[], &[axis]);
        self.node("CumSum", &[x, &axis], vec![])
    }

    pub fn gather_elements(&mut self, data: &Value, indices: &Value, axis: i64) -> Value {
        self.node(
            "GatherElements",
            &[data, indices],
            vec![Attr::int("axis", axis)],
        )
    }

    /// Layer normalization over the last axis, in f32 even in an fp16 graph (`scale` and
    /// `bias` must be f32 weights: [`Self::weight_f32`]).
    pub fn layer_norm(&mut self, x: &Value, scale: &Value, bias: &Value, epsilon: f32) -> Value {
        self.in_f32(x, |g, x| {
            g.node(
                "LayerNormalization",
                &[x, scale, bias],
                vec![Attr::int("axis", -1), Attr::float("epsilon", epsilon)],
            )
        })
    }

    /// A 2-D convolution with `kernel` and `stride` and no padding.
    pub fn conv2d(
        &mut self,
        x: &Value,
        weight: &Value,
        bias: Option<&Value>,
        kernel: [i64; 2],
        stride: [i64; 2],
    ) -> Value {
        let inputs: Vec<&Value> = std::iter::once(x)
            .chain(std::iter::once(weight))
            .chain(bias)
            .collect();
        self.node(
            "Conv",
            &inputs,
            vec![
                Attr::ints("kernel_shape", &kernel),
                Attr::ints("strides", &stride),
            ],
        )
    }
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => DimensionValue::DimValue(*n),
                Dim::Dynamic(s) => DimensionValue::DimParam((*s).to_owned()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: String::new(),
    }
}
