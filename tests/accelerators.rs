//! Graphs that accelerators take: every operator of every fixture's fp32 and fp16 graphs
//! is one that TensorRT's ONNX parser supports, and the fp16 graphs keep layer norm and
//! softmax in fp32 (fp16 layer-norm overflow: NVIDIA/TensorRT issues 2564 and 3101).
//! The int8 variant is for the CPU (`MatMulInteger`), which the runtime enforces
//! (`PrecisionNotForProvider`); its operators are not checked here.
//!
//! The graphs are read with a minimal ONNX protobuf schema of their own (the fields
//! below, by ONNX's field numbers), so that this test shares no code with the exporter.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use vtde_tests::{exported_package_with_variants, fixture_configs};

/// The operators TensorRT 10.0's ONNX parser supports (every row marked `Y` in
/// `docs/operators.md` of onnx/onnx-tensorrt, commit 96e781103cfc, 2024-06-17: "TensorRT
/// 10.0 supports operators in the inclusive range of opset 9 to opset 20").
const TENSORRT_OPERATORS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "CastLike",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DeformConv",
    "DepthToSpace",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GridSample",
    "GroupNormalization",
    "GRU",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "If",
    "ImageScaler",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "Loop",
    "LRN",
    "LSTM",
    "LpNormalization",
    "LpPool",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "MeanVarianceNormalization",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Neg",
    "NonMaxSuppression",
    "NonZero",
    "Not",
    "OneHot",
    "Or",
    "Pad",
    "ParametricSoftplus",
    "Pow",
    "PRelu",
    "QuantizeLinear",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Range",
    "Reciprocal",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "ReverseSequence",
    "RNN",
    "RoiAlign",
    "Round",
    "ScaledTanh",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Upsample",
    "Where",
    "Xor",
];

/// ONNX's `TensorProto.DataType.FLOAT`.
const FLOAT: i64 = 1;

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    domain: String,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(int64, tag = "3")]
    i: i64,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(string, tag = "8")]
    name: String,
}

fn graph(path: &Path) -> GraphProto {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ModelProto::decode(bytes.as_slice())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .graph
        .unwrap_or_else(|| panic!("{} has no graph", path.display()))
}

/// The fp32 and fp16 graph files of a package (the int8 ones are for the CPU).
fn accelerator_graphs(package: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(package)
        .expect("package dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .filter(|p| !p.to_string_lossy().contains(".int8."))
        .collect();
    files.sort();
    files
}

#[test]
fn every_operator_of_the_fp32_and_fp16_graphs_is_one_tensorrt_parses() {
    let mut checked = 0;
    for config in fixture_configs() {
        let package = exported_package_with_variants(&config);
        let files = accelerator_graphs(&package);
        assert_eq!(files.len(), 5, "{config}: three fp32 and two fp16 graphs");
        for file in files {
            for node in graph(&file).node {
                assert!(
                    node.domain.is_empty() || node.domain == "ai.onnx",
                    "{}: {} is in domain {:?}, which TensorRT does not parse",
                    file.display(),
                    node.op_type,
                    node.domain
                );
                assert!(
                    TENSORRT_OPERATORS.contains(&node.op_type.as_str()),
                    "{}: TensorRT's ONNX parser has no {} ({})",
                    file.display(),
                    node.op_type,
                    node.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked} nodes checked");
}

#[test]
fn fp16_graphs_keep_layer_norm_and_softmax_in_fp32() {
    let mut checked = 0;
    for config in fixture_configs() {
        let package = exported_package_with_variants(&config);
        for name in ["vision.fp16.onnx", "text.fp16.onnx"] {
            let file = package.join(name);
            let g = graph(&file);
            let producer: HashMap<&str, &NodeProto> = g
                .node
                .iter()
                .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
                .collect();
            let initializers: HashMap<&str, i32> = g
                .initializer
                .iter()
                .map(|t| (t.name.as_str(), t.data_type))
                .collect();
            let cast_to_float = |value: &str| {
                producer.get(value).is_some_and(|p| {
                    p.op_type == "Cast"
                        && p.attribute.iter().any(|a| a.name == "to" && a.i == FLOAT)
                })
            };
            for node in &g.node {
                if node.op_type != "LayerNormalization" && node.op_type != "Softmax" {
                    continue;
                }
                let input = node.input.first().map(String::as_str).unwrap_or_default();
                assert!(
                    cast_to_float(input),
                    "{}: {} {} does not take an fp32 input",
                    file.display(),
                    node.op_type,
                    node.name
                );
                for param in node.input.iter().skip(1) {
                    assert_eq!(
                        initializers.get(param.as_str()).copied().map(i64::from),
                        Some(FLOAT),
                        "{}: {} {}: parameter {param} is not an fp32 initializer",
                        file.display(),
                        node.op_type,
                        node.name
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked} layer norms and softmaxes checked");
}
