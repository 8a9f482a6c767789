//! The package manifest, `vtde.json`: the contract between `vtde-export`, which writes
//! it, and the runtime, which reads it.
//!
//! The manifest holds everything the runtime needs and nothing it must guess (see
//! `docs/design.md`): the source architecture, the projection size, `logit_scale` as stored in
//! the checkpoint, the image preprocessing taken from the checkpoint's preprocessor
//! config, the tokenizer settings, and each graph's file, opset, precision and sha256.
//!
//! The format is versioned by [`FORMAT_VERSION`]. A reader refuses a manifest from a
//! newer format rather than misreading it. Version 2 added each graph's weights file
//! (`weights`: ONNX external data beside the graph); version 3 added the tokenizer's
//! sha256 ([`Manifest::tokenizer_sha256`]), so that every file the runtime reads is
//! hashed. Older packages still open: version 1 (weights inside the graph files) and
//! version 2, both with their tokenizer unhashed and everything else checked as in
//! version 3.

use serde::{Deserialize, Serialize};

use crate::graph::GraphKind;
use crate::precision::Precision;

/// The manifest's file name inside a package directory.
pub const MANIFEST_FILE: &str = "vtde.json";

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 3;

/// The first format version whose manifest records the tokenizer's sha256
/// ([`Manifest::tokenizer_sha256`], required from this version on).
pub const TOKENIZER_SHA256_SINCE: u32 = 3;

/// `vtde.json`, the package manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Package format version; see [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Where the package came from.
    pub source: Source,
    /// Width of the shared embedding space (`projection_dim`).
    pub projection_dim: usize,
    /// `logit_scale` exactly as stored in the checkpoint; logits use `exp(logit_scale)`.
    pub logit_scale: f32,
    /// How images become `pixel_values`.
    pub image: ImagePreprocess,
    /// How texts become `input_ids`, `attention_mask` (and `token_type_ids`).
    pub text: TextPreprocess,
    /// Lowercase hex sha256 of the tokenizer file (`text.tokenizer`). Required from
    /// format version 3 ([`TOKENIZER_SHA256_SINCE`]); older packages have none, and
    /// their tokenizer is read unhashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_sha256: Option<String>,
    /// The three graphs of the package.
    pub graphs: Graphs,
    /// The tool that wrote the package.
    pub producer: Producer,
}

/// The checkpoint a package was exported from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The transformers class, e.g. `VisionTextDualEncoderModel` or `CLIPModel`.
    pub architecture: String,
    /// The vision tower's `model_type`, e.g. `vit`.
    pub vision_model_type: String,
    /// The text tower's `model_type`, e.g. `bert`.
    pub text_model_type: String,
}

/// Image preprocessing, with the semantics of transformers' image processors (PIL
/// backend): convert to RGB, resize, center-crop, rescale, normalize, in that order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePreprocess {
    /// Height of the `pixel_values` the vision graph takes.
    pub height: u32,
    /// Width of the `pixel_values` the vision graph takes.
    pub width: u32,
    /// Convert every image to 3-channel RGB first (`do_convert_rgb`).
    pub convert_rgb: bool,
    /// The resize step, or `None` when the processor does not resize.
    pub resize: Option<Resize>,
    /// The center crop, or `None` when the processor does not crop.
    pub center_crop: Option<Size>,
    /// Multiply pixel values (0..=255) by this, or `None` for no rescale.
    pub rescale_factor: Option<f32>,
    /// Per-channel `(x - mean) / std`, or `None` for no normalization.
    pub normalize: Option<Normalize>,
}

/// A resize step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// The target size rule.
    pub rule: ResizeRule,
    /// The resampling filter, as PIL names it.
    pub filter: ResampleFilter,
}

/// How the target size of a resize is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ResizeRule {
    /// Resize to exactly `height` × `width`, ignoring the aspect ratio (`size` given as
    /// `{"height", "width"}`).
    Exact {
        /// Target height.
        height: u32,
        /// Target width.
        width: u32,
    },
    /// Resize so that the shorter edge becomes `shortest_edge`, keeping the aspect ratio
    /// as transformers' `get_resize_output_image_size` rounds it (`size` given as
    /// `{"shortest_edge"}`).
    ShortestEdge {
        /// Length of the shorter edge after resizing.
        shortest_edge: u32,
    },
}

/// PIL's resampling filters, by PIL's names (`resample` 0, 2, 3, 1, 4, 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResampleFilter {
    /// `PIL.Image.NEAREST` (0).
    Nearest,
    /// `PIL.Image.BILINEAR` (2).
    Bilinear,
    /// `PIL.Image.BICUBIC` (3).
    Bicubic,
    /// `PIL.Image.LANCZOS` (1).
    Lanczos,
    /// `PIL.Image.BOX` (4).
    Box,
    /// `PIL.Image.HAMMING` (5).
    Hamming,
}

impl ResampleFilter {
    /// The filter for PIL's integer `resample` code, as stored in preprocessor configs.
    pub fn from_pil_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => Self::Nearest,
            1 => Self::Lanczos,
            2 => Self::Bilinear,
            3 => Self::Bicubic,
            4 => Self::Box,
            5 => Self::Hamming,
            _ => return None,
        })
    }
}

/// A height × width size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
}

/// Per-channel normalization constants, in RGB order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Per-channel mean (`image_mean`).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (`image_std`).
    pub std: [f32; 3],
}

/// Text preprocessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextPreprocess {
    /// The `tokenizers` JSON file, relative to the package directory.
    pub tokenizer: String,
    /// Longest sequence the text tower takes (from its position embeddings), special
    /// tokens included. Longer texts are truncated to this.
    pub max_length: usize,
    /// Id used to pad a batch to its longest text.
    pub pad_token_id: i64,
    /// The inputs the text graph takes, in order: `input_ids`, `attention_mask`, and
    /// `token_type_ids` only where the tower takes them.
    pub inputs: Vec<String>,
}

/// The graphs of a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Graphs {
    /// `pixel_values` → `image_features`.
    pub vision: GraphFile,
    /// `input_ids`, `attention_mask`[, `token_type_ids`] → `text_features`.
    pub text: GraphFile,
    /// `image_features`, `text_features` → `image_embeds`, `text_embeds`.
    pub projection: GraphFile,
}

impl Graphs {
    /// The entry of one graph.
    pub fn get(&self, kind: GraphKind) -> &GraphFile {
        match kind {
            GraphKind::Vision => &self.vision,
            GraphKind::Text => &self.text,
            GraphKind::Projection => &self.projection,
        }
    }
}

/// One ONNX graph file of a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphFile {
    /// File name, relative to the package directory.
    pub file: String,
    /// The ONNX default-domain opset the graph imports.
    pub opset: i64,
    /// Numeric precision of the graph in `file`: always `fp32` for the main graph.
    pub precision: Precision,
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// The file holding the graph's weights (ONNX external data), when they are not
    /// inside `file`. Every external-data file the graph references must be this one
    /// (see [`external_data_locations`](crate::external_data_locations)): a graph that
    /// references a file the manifest does not declare, and so would not hash, is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightsFile>,
    /// Width of the graph's main output (`Dv`, `Dt` or the projection size).
    pub output_dim: usize,
    /// The same graph in other precisions (same inputs, outputs and opset), written by
    /// `vtde export --quantize int8` or `--precision fp16`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<GraphVariant>,
}

impl GraphFile {
    /// The files of this graph in `precision`, if the package has it.
    pub fn in_precision(&self, precision: Precision) -> Option<GraphFiles<'_>> {
        if precision == self.precision {
            return Some(GraphFiles {
                file: &self.file,
                sha256: &self.sha256,
                weights: self.weights.as_ref(),
            });
        }
        self.variants
            .iter()
            .find(|v| v.precision == precision)
            .map(|v| GraphFiles {
                file: &v.file,
                sha256: &v.sha256,
                weights: v.weights.as_ref(),
            })
    }
}

/// The files of a graph in one precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphFiles<'m> {
    /// The ONNX file, relative to the package directory.
    pub file: &'m str,
    /// Its sha256.
    pub sha256: &'m str,
    /// Its weights file, if the weights are not inside the ONNX file.
    pub weights: Option<&'m WeightsFile>,
}

/// A graph's weights file (ONNX external data, referenced from the graph by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsFile {
    /// File name, relative to the package directory.
    pub file: String,
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
}

/// A precision variant of a graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphVariant {
    /// File name, relative to the package directory.
    pub file: String,
    /// Its precision.
    pub precision: Precision,
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// Its weights file, as [`GraphFile::weights`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightsFile>,
}

/// The tool that wrote a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// The tool's name (`vtde-export`).
    pub name: String,
    /// Its version.
    pub version: String,
}
