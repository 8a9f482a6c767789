//! The three graphs of a package and what each must take and give: the part of the
//! contract that both the exporter (which names the inputs and outputs) and the runtime
//! (which checks them when it opens a graph) rely on: names, element types, and the
//! sizes the manifest fixes ([`GraphKind::tensor_specs`]).

use crate::manifest::Manifest;
use crate::names;

/// Which graph of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphKind {
    /// `vision.onnx`: `pixel_values` → `image_features`.
    Vision,
    /// `text.onnx`: `input_ids`, `attention_mask`[, `token_type_ids`] → `text_features`.
    Text,
    /// `projection.onnx`: features → embeddings.
    Projection,
}

impl GraphKind {
    /// All graphs, in manifest order.
    pub const ALL: [GraphKind; 3] = [GraphKind::Vision, GraphKind::Text, GraphKind::Projection];

    /// The graph's role name, as in the manifest (`vision`, `text`, `projection`).
    pub fn name(self) -> &'static str {
        match self {
            GraphKind::Vision => "vision",
            GraphKind::Text => "text",
            GraphKind::Projection => "projection",
        }
    }

    /// The inputs the graph takes, exactly: the runtime feeds these and no others. The
    /// text graph's depend on the tower (`token_type_ids` only where it takes them), as
    /// the manifest records.
    pub fn inputs(self, manifest: &Manifest) -> Vec<String> {
        match self {
            GraphKind::Vision => vec![names::PIXEL_VALUES.into()],
            GraphKind::Text => manifest.text.inputs.clone(),
            GraphKind::Projection => {
                vec![names::IMAGE_FEATURES.into(), names::TEXT_FEATURES.into()]
            }
        }
    }

    /// The outputs the runtime reads (a graph may have more, such as
    /// `last_hidden_state`).
    pub fn outputs(self) -> &'static [&'static str] {
        match self {
            GraphKind::Vision => &[names::IMAGE_FEATURES],
            GraphKind::Text => &[names::TEXT_FEATURES],
            GraphKind::Projection => &[names::IMAGE_EMBEDS, names::TEXT_EMBEDS],
        }
    }
}

/// A dimension of a graph input or output as the contract fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// Any size: the batch, or the text graph's sequence.
    Any,
    /// This size exactly, from the manifest.
    Fixed(usize),
}

/// The element type of a graph input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// 32-bit float (`pixel_values`, features, embeddings).
    F32,
    /// 64-bit integer (token ids, masks, type ids).
    I64,
}

/// One input or output of a graph: its name, element type and shape, as the manifest
/// implies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The input or output name.
    pub name: String,
    /// Its element type.
    pub element: ElementType,
    /// Its dimensions.
    pub dims: Vec<Dim>,
    /// The manifest fields the fixed dimensions come from, for messages.
    pub fields: &'static str,
}

impl std::fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| match d {
                Dim::Any => "?".to_owned(),
                Dim::Fixed(n) => n.to_string(),
            })
            .collect();
        write!(f, "[{}]", dims.join(", "))
    }
}

impl GraphKind {
    /// Every input the graph takes and every output the runtime reads, with the element
    /// type and the shape the manifest implies: `pixel_values` is `[?, 3, image.height,
    /// image.width]`, each feature output and projection input `[?, output_dim]` of its
    /// graph, the embeddings `[?, projection_dim]`, text inputs `[?, ?]`.
    pub fn tensor_specs(self, m: &Manifest) -> Vec<TensorSpec> {
        use Dim::{Any, Fixed};
        let spec = |name: &str, element, dims: Vec<Dim>, fields| TensorSpec {
            name: name.to_owned(),
            element,
            dims,
            fields,
        };
        let dv = m.graphs.vision.output_dim;
        let dt = m.graphs.text.output_dim;
        let p = m.projection_dim;
        let image_features = || {
            spec(
                names::IMAGE_FEATURES,
                ElementType::F32,
                vec![Any, Fixed(dv)],
                "`graphs.vision.output_dim`",
            )
        };
        let text_features = || {
            spec(
                names::TEXT_FEATURES,
                ElementType::F32,
                vec![Any, Fixed(dt)],
                "`graphs.text.output_dim`",
            )
        };
        match self {
            GraphKind::Vision => vec![
                spec(
                    names::PIXEL_VALUES,
                    ElementType::F32,
                    vec![
                        Any,
                        Fixed(3),
                        Fixed(m.image.height as usize),
                        Fixed(m.image.width as usize),
                    ],
                    "`image.height` and `image.width`",
                ),
                image_features(),
            ],
            GraphKind::Text => {
                let mut specs: Vec<TensorSpec> = m
                    .text
                    .inputs
                    .iter()
                    .map(|name| spec(name, ElementType::I64, vec![Any, Any], "`text.inputs`"))
                    .collect();
                specs.push(text_features());
                specs
            }
            GraphKind::Projection => vec![
                image_features(),
                text_features(),
                spec(
                    names::IMAGE_EMBEDS,
                    ElementType::F32,
                    vec![Any, Fixed(p)],
                    "`projection_dim`",
                ),
                spec(
                    names::TEXT_EMBEDS,
                    ElementType::F32,
                    vec![Any, Fixed(p)],
                    "`projection_dim`",
                ),
            ],
        }
    }
}

impl std::fmt::Display for GraphKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} graph", self.name())
    }
}
