//! The three graphs of a package and what each must take and give: the part of the
//! contract that both the exporter (which names the inputs and outputs) and the runtime
//! (which checks them when it opens a graph) rely on.

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

impl std::fmt::Display for GraphKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} graph", self.name())
    }
}
