//! The start of a vision tower: the `pixel_values` input, the patch embedding (a strided
//! convolution) and the learned tokens (class, distillation) put in front of the
//! patches. Graph-only helpers: the towers load the kernels and tokens themselves, since
//! each architecture names and shapes them differently.

use crate::onnx::proto::DataType;
use crate::onnx::{Dim, GraphBuilder, Value};

/// Declares the vision graph's input, `pixel_values` `[batch, channels, size, size]`.
pub fn pixel_input(g: &mut GraphBuilder, channels: usize, size: usize) -> Value {
    g.input(
        vtde_package::names::PIXEL_VALUES,
        DataType::Float,
        &[
            Dim::Dynamic("batch"),
            Dim::Fixed(channels as i64),
            Dim::Fixed(size as i64),
            Dim::Fixed(size as i64),
        ],
    )
}

/// Cuts `pixels` into `patch`×`patch` patches and embeds each (a strided convolution):
/// `[batch, patches, hidden]`.
pub fn patch_embedding(
    g: &mut GraphBuilder,
    pixels: &Value,
    kernel: &Value,
    bias: Option<&Value>,
    hidden: usize,
    patch: usize,
) -> Value {
    let p = patch as i64;
    let x = g.conv2d(pixels, kernel, bias, [p; 2], [p; 2]);
    let x = g.reshape(&x, &[0, hidden as i64, -1]);
    g.transpose(&x, &[0, 2, 1])
}

/// Puts learned `[hidden]` tokens (class, distillation) in front of the patches of every
/// image of the batch.
pub fn prepend_tokens(
    g: &mut GraphBuilder,
    pixels: &Value,
    tokens: &[Value],
    patches: Value,
    hidden: usize,
) -> Value {
    let batch = g.shape_slice(pixels, 0, 1);
    let rest = g.const_i64(&[2], &[1, hidden as i64]);
    let shape = g.concat(&[&batch, &rest], 0);
    let mut parts: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let t = g.reshape(t, &[1, 1, hidden as i64]);
            g.expand(&t, &shape)
        })
        .collect();
    parts.push(patches);
    let refs: Vec<&Value> = parts.iter().collect();
    g.concat(&refs, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_util::{graph, initializer, op_types};
    use crate::onnx::builder::Precision;
    use crate::onnx::proto::{DimensionValue, TensorProto};

    fn i64s(t: &TensorProto) -> Vec<i64> {
        t.raw_data
            .chunks(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn pixel_input_is_a_dynamic_batch_of_fixed_square_images() {
        let mut g = GraphBuilder::new("t");
        pixel_input(&mut g, 3, 224);
        let graph = graph(g);
        assert_eq!(graph.input.len(), 1);
        let input = &graph.input[0];
        assert_eq!(input.name, vtde_package::names::PIXEL_VALUES);
        let tensor = input.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
        assert_eq!(tensor.elem_type, DataType::Float as i32);
        let dims: Vec<_> = tensor
            .shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| d.value.clone().unwrap())
            .collect();
        assert_eq!(
            dims,
            [
                DimensionValue::DimParam("batch".into()),
                DimensionValue::DimValue(3),
                DimensionValue::DimValue(224),
                DimensionValue::DimValue(224),
            ]
        );
        assert!(graph.node.is_empty());
    }

    #[test]
    fn pixel_input_is_cast_to_half_in_an_fp16_graph() {
        let mut g = GraphBuilder::with_precision("t", Precision::Fp16);
        pixel_input(&mut g, 3, 32);
        let graph = graph(g);
        assert_eq!(op_types(&graph), ["Cast"]);
        assert_eq!(graph.node[0].attribute[0].i, DataType::Float16 as i64);
    }

    #[test]
    fn patch_embedding_is_a_convolution_strided_by_the_patch_then_flattened() {
        let mut g = GraphBuilder::new("t");
        let pixels = pixel_input(&mut g, 3, 32);
        let kernel = g.weight("kernel", &[8, 3, 16, 16], &vec![0.0; 8 * 3 * 16 * 16]);
        let bias = g.weight("bias", &[8], &[0.0; 8]);
        patch_embedding(&mut g, &pixels, &kernel, Some(&bias), 8, 16);
        let graph = graph(g);
        assert_eq!(op_types(&graph), ["Conv", "Reshape", "Transpose"]);
        let conv = &graph.node[0];
        assert_eq!(conv.input, ["pixel_values", "kernel", "bias"]);
        let attr = |name: &str| &conv.attribute.iter().find(|a| a.name == name).unwrap().ints;
        assert_eq!(attr("kernel_shape"), &[16, 16]);
        assert_eq!(attr("strides"), &[16, 16]);
        // [b, hidden, h', w'] → [b, hidden, patches] → [b, patches, hidden].
        assert_eq!(
            i64s(initializer(&graph, &graph.node[1].input[1])),
            [0, 8, -1]
        );
        assert_eq!(graph.node[2].attribute[0].ints, [0, 2, 1]);
    }

    #[test]
    fn patch_embedding_without_bias_passes_two_inputs() {
        let mut g = GraphBuilder::new("t");
        let pixels = pixel_input(&mut g, 1, 8);
        let kernel = g.weight("kernel", &[4, 1, 4, 4], &[0.0; 64]);
        patch_embedding(&mut g, &pixels, &kernel, None, 4, 4);
        let graph = graph(g);
        assert_eq!(graph.node[0].input, ["pixel_values", "kernel"]);
    }

    #[test]
    fn prepend_tokens_broadcasts_each_token_over_the_batch_before_the_patches() {
        let mut g = GraphBuilder::new("t");
        let pixels = pixel_input(&mut g, 3, 32);
        let cls = g.weight("cls", &[8], &[0.0; 8]);
        let dist = g.weight("dist", &[8], &[0.0; 8]);
        let patches = g.input(
            "patches",
            DataType::Float,
            &[Dim::Dynamic("batch"), Dim::Fixed(4), Dim::Fixed(8)],
        );
        prepend_tokens(&mut g, &pixels, &[cls, dist], patches, 8);
        let graph = graph(g);
        assert_eq!(
            op_types(&graph),
            ["Shape", "Concat", "Reshape", "Expand", "Reshape", "Expand", "Concat"]
        );
        // The target shape is [batch, 1, hidden], batch read from the pixels.
        let shape = &graph.node[0];
        assert_eq!(shape.input, ["pixel_values"]);
        let rest = initializer(&graph, &graph.node[1].input[1]);
        assert_eq!(i64s(rest), [1, 8]);
        // Tokens in the order given, then the patches, along the sequence axis.
        let concat = graph.node.last().unwrap();
        assert_eq!(concat.attribute[0].i, 1);
        assert_eq!(
            concat.input,
            [
                graph.node[3].output[0].clone(),
                graph.node[5].output[0].clone(),
                "patches".into()
            ]
        );
        assert_eq!(graph.node[2].input[0], "cls");
        assert_eq!(graph.node[4].input[0], "dist");
    }
}
