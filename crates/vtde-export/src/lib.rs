//! vtde-export: reads a Hugging Face vision-text dual encoder checkpoint
//! (`config.json`, safetensors weights, tokenizer and image processor files) and writes a
//! vtde **model package**: `vision.onnx`, `text.onnx`, `projection.onnx`,
//! `tokenizer.json` and the manifest `vtde.json` (the contract is the `vtde-package`
//! crate; see `docs/design.md`). No Python is needed.
//!
//! Layout:
//! - `onnx`: the ONNX protobuf messages and a graph builder;
//! - `layers`: the shared transformer pieces (attention, MLP, layer norm, poolers);
//! - `towers`: one module per architecture, mapping config and weights onto the pieces;
//! - `checkpoint`, `preprocessor`, `tokenizer`: reading the checkpoint's files;
//! - `package`: writing the package directory safely.

mod checkpoint;
mod error;
mod layers;
mod onnx;
mod package;
mod preprocessor;
mod tokenizer;
mod towers;

use std::path::{Path, PathBuf};

use vtde_package::manifest::{
    GraphFile, GraphVariant, Graphs, Manifest, Producer, Source, WeightsFile, FORMAT_VERSION,
    MANIFEST_FILE,
};

pub use error::{Error, Result};
pub use vtde_package::Precision;

use checkpoint::{read_json, ConfigView, Weights};
use onnx::proto::ModelProto;
use package::PackageWriter;
use towers::{bert, clip, projection, vit};

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The package directory.
    pub dir: PathBuf,
    /// The manifest written to `vtde.json`.
    pub manifest: Manifest,
}

/// The `model_type`s of the vision towers vtde exports.
pub const SUPPORTED_VISION: &str = "vit, deit, beit, clip_vision_model (or clip)";
/// The `model_type`s of the text towers vtde exports.
pub const SUPPORTED_TEXT: &str = "bert, roberta, xlm-roberta, clip_text_model (or clip)";
/// The checkpoint `model_type`s vtde exports.
pub const SUPPORTED_MODELS: &str =
    "vision-text-dual-encoder (VisionTextDualEncoderModel), clip (CLIPModel)";

/// The checkpoint classes vtde exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Architecture {
    VisionTextDualEncoder,
    Clip,
}

impl Architecture {
    fn name(self) -> &'static str {
        match self {
            Self::VisionTextDualEncoder => "VisionTextDualEncoderModel",
            Self::Clip => "CLIPModel",
        }
    }
}

/// A vision tower, by architecture.
enum VisionTower {
    Vit(vit::VitConfig),
    Clip(clip::ClipVisionConfig),
}

impl VisionTower {
    /// Reads `vision_config`; `default_type` applies when it names no `model_type`.
    /// Also returns where the tower's own fields are in `config.json` (e.g.
    /// `vision_config.`), for messages.
    fn from_config(cfg: &ConfigView, default_type: &str) -> Result<(String, Self, String)> {
        let model_type = cfg.str_or("model_type", default_type)?;
        let mut prefix = cfg.prefix.clone();
        let tower = match model_type.as_str() {
            "vit" => Self::Vit(vit::VitConfig::from_config(cfg, vit::Variant::Vit)?),
            "deit" => Self::Vit(vit::VitConfig::from_config(cfg, vit::Variant::Deit)?),
            "beit" => Self::Vit(vit::VitConfig::from_config(cfg, vit::Variant::Beit)?),
            "clip_vision_model" => Self::Clip(clip::ClipVisionConfig::from_config(cfg)?),
            // Older dual encoders carry a whole CLIPConfig here; its vision half is used.
            "clip" => {
                let inner = cfg.child("vision_config")?;
                prefix = inner.prefix.clone();
                Self::Clip(clip::ClipVisionConfig::from_config(&inner)?)
            }
            _ => {
                return Err(Error::Unsupported {
                    path: cfg.path.to_owned(),
                    what: "vision tower (vision_config.model_type)",
                    found: model_type,
                    supported: SUPPORTED_VISION.to_owned(),
                })
            }
        };
        Ok((model_type, tower, prefix))
    }

    fn num_layers(&self) -> usize {
        match self {
            Self::Vit(c) => c.num_layers,
            Self::Clip(c) => c.encoder.num_layers,
        }
    }

    fn image_size(&self) -> usize {
        match self {
            Self::Vit(c) => c.image_size,
            Self::Clip(c) => c.image_size,
        }
    }

    fn output_dim(&self) -> usize {
        match self {
            Self::Vit(c) => c.output_dim(),
            Self::Clip(c) => c.encoder.hidden_size,
        }
    }

    fn build(&self, weights: &Weights, prefix: &str, precision: Precision) -> Result<ModelProto> {
        match self {
            Self::Vit(c) => vit::build(c, weights, prefix, precision),
            Self::Clip(c) => clip::build_vision(c, weights, prefix, precision),
        }
    }
}

/// A text tower, by architecture.
enum TextTower {
    Bert(bert::BertConfig),
    Clip(clip::ClipTextConfig),
}

/// Text towers that transformers' dual encoder cannot use (no pooled output), named so
/// that the error says why rather than just "unsupported".
const TEXT_WITHOUT_POOLER: &[&str] = &["distilbert", "electra", "deberta", "deberta-v2"];

impl TextTower {
    /// Reads `text_config`; `default_type` applies when it names no `model_type`.
    /// Also returns where the tower's own fields are in `config.json`.
    fn from_config(cfg: &ConfigView, default_type: &str) -> Result<(String, Self, String)> {
        let model_type = cfg.str_or("model_type", default_type)?;
        let mut prefix = cfg.prefix.clone();
        let tower = match model_type.as_str() {
            "bert" => Self::Bert(bert::BertConfig::from_config(cfg, bert::Variant::Bert)?),
            "roberta" | "xlm-roberta" => {
                Self::Bert(bert::BertConfig::from_config(cfg, bert::Variant::Roberta)?)
            }
            "clip_text_model" => Self::Clip(clip::ClipTextConfig::from_config(cfg)?),
            "clip" => {
                let inner = cfg.child("text_config")?;
                prefix = inner.prefix.clone();
                Self::Clip(clip::ClipTextConfig::from_config(&inner)?)
            }
            _ => {
                let why = if TEXT_WITHOUT_POOLER.contains(&model_type.as_str()) {
                    " (it has no pooled output, so transformers' VisionTextDualEncoderModel \
                     cannot use it either)"
                } else {
                    ""
                };
                return Err(Error::Unsupported {
                    path: cfg.path.to_owned(),
                    what: "text tower (text_config.model_type)",
                    found: format!("{model_type}{why}"),
                    supported: SUPPORTED_TEXT.to_owned(),
                });
            }
        };
        Ok((model_type, tower, prefix))
    }

    fn num_layers(&self) -> usize {
        match self {
            Self::Bert(c) => c.num_layers,
            Self::Clip(c) => c.encoder.num_layers,
        }
    }

    fn output_dim(&self) -> usize {
        match self {
            Self::Bert(c) => c.hidden_size,
            Self::Clip(c) => c.encoder.hidden_size,
        }
    }

    fn max_length(&self) -> usize {
        match self {
            Self::Bert(c) => c.max_length(),
            Self::Clip(c) => c.max_position_embeddings,
        }
    }

    fn pad_token_id(&self) -> usize {
        match self {
            Self::Bert(c) => c.pad_token_id,
            Self::Clip(c) => c.pad_token_id,
        }
    }

    fn inputs(&self) -> &'static [&'static str] {
        use vtde_package::names::{ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS};
        match self {
            Self::Bert(c) if c.takes_token_type_ids() => {
                &[INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS]
            }
            Self::Bert(_) | Self::Clip(_) => &[INPUT_IDS, ATTENTION_MASK],
        }
    }

    fn tokenizer_family(&self) -> tokenizer::TokenizerFamily {
        match self {
            Self::Bert(c) if c.variant == bert::Variant::Bert => tokenizer::TokenizerFamily::Bert,
            Self::Bert(_) => tokenizer::TokenizerFamily::Roberta,
            Self::Clip(_) => tokenizer::TokenizerFamily::Clip,
        }
    }

    fn build(&self, weights: &Weights, prefix: &str, precision: Precision) -> Result<ModelProto> {
        match self {
            Self::Bert(c) => bert::build(c, weights, prefix, precision),
            Self::Clip(c) => clip::build_text(c, weights, prefix, precision),
        }
    }
}

/// Checks that the weights under `prefix` hold no layer beyond the `num_layers` the
/// config says (`field` in `config`): a config that says fewer layers than the weights
/// hold would export a shallower tower silently. (Fewer layers in the weights than the
/// config says is caught when the missing weights are read.)
fn check_layer_count(
    weights: &Weights,
    prefix: &str,
    num_layers: usize,
    config: &Path,
    field: String,
) -> Result<()> {
    let highest = weights
        .names()
        .filter_map(|name| Some((layer_index(name.strip_prefix(prefix)?)?, name)))
        .max();
    match highest {
        Some((index, name)) if index >= num_layers => Err(Error::LayerCount {
            path: config.to_owned(),
            field,
            configured: num_layers,
            found: index,
            example: name.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The layer index in a weight name: the number after a `layer` or `layers` segment
/// (`encoder.layer.3.…`, `encoder.layers.3.…`, `layers.3.…`).
fn layer_index(name: &str) -> Option<usize> {
    let parts: Vec<&str> = name.split('.').collect();
    parts
        .windows(2)
        .filter(|w| w[0] == "layer" || w[0] == "layers")
        .find_map(|w| w[1].parse().ok())
}

/// Where the values of the manifest come from in the checkpoint, for errors that name
/// the checkpoint's file and field rather than the manifest's.
struct ContractSources<'a> {
    checkpoint_dir: &'a Path,
    /// The safetensors file holding `logit_scale`.
    logit_scale: &'a Path,
    config: &'a Path,
    processor: &'a Path,
    vision_prefix: &'a str,
    text_prefix: &'a str,
}

impl ContractSources<'_> {
    /// The checkpoint file and field a manifest field is made from.
    fn source(&self, field: &str) -> (PathBuf, String) {
        let config = |key: String| (self.config.to_owned(), format!("`{key}`"));
        let processor = |key: &str| (self.processor.to_owned(), format!("`{key}`"));
        match field {
            "logit_scale" => (
                self.logit_scale.to_owned(),
                "the weight `logit_scale`".to_owned(),
            ),
            "image.height" | "image.width" => config(format!("{}image_size", self.vision_prefix)),
            "image.resize" => processor("size"),
            "image.center_crop" => processor("crop_size"),
            "image.rescale_factor" => processor("rescale_factor"),
            "image.normalize.mean" => processor("image_mean"),
            "image.normalize.std" => processor("image_std"),
            "projection_dim" | "graphs.projection.output_dim" => {
                config("projection_dim".to_owned())
            }
            "graphs.vision.output_dim" => config(format!("{}hidden_size", self.vision_prefix)),
            "graphs.text.output_dim" => config(format!("{}hidden_size", self.text_prefix)),
            "text.max_length" => config(format!("{}max_position_embeddings", self.text_prefix)),
            "text.pad_token_id" => config(format!("{}pad_token_id", self.text_prefix)),
            _ => (
                self.checkpoint_dir.to_owned(),
                format!("the package's `{field}`"),
            ),
        }
    }

    fn error(&self, problem: vtde_package::ManifestProblem) -> Error {
        let (source_file, source_field) = self.source(&problem.field);
        Error::Contract {
            source_file,
            source_field,
            problem: problem.message,
        }
    }
}

/// What to export besides the fp32 graphs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Precision variants of the vision and text graphs to write beside the fp32 ones
    /// (`vision.int8.onnx`, `text.fp16.onnx`, ...). The projection head stays fp32: it
    /// is a few small matmuls.
    pub variants: Vec<Precision>,
}

impl ExportOptions {
    /// Sets [`ExportOptions::variants`].
    pub fn with_variants(mut self, variants: Vec<Precision>) -> Self {
        self.variants = variants;
        self
    }
}

/// Exports the checkpoint in `checkpoint_dir` to a package in `out_dir` with the fp32
/// graphs only, reporting each step to `progress`.
pub fn export(
    checkpoint_dir: &Path,
    out_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Exported> {
    export_with(checkpoint_dir, out_dir, &ExportOptions::default(), progress)
}

/// Exports the checkpoint in `checkpoint_dir` to a package in `out_dir`, with the
/// variants of `options`, reporting each step to `progress`.
pub fn export_with(
    checkpoint_dir: &Path,
    out_dir: &Path,
    options: &ExportOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Exported> {
    let config_path = checkpoint_dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::MissingFile {
            path: config_path,
            hint: "is this a Hugging Face checkpoint directory (saved with save_pretrained)?"
                .to_owned(),
        });
    }
    let config_json = read_json(&config_path)?;
    let config = ConfigView::new(&config_path, &config_json);
    let model_type = config.str_or("model_type", "")?;
    let architecture = match model_type.as_str() {
        "vision-text-dual-encoder" => Architecture::VisionTextDualEncoder,
        "clip" => Architecture::Clip,
        _ => {
            return Err(Error::Unsupported {
                path: config_path.clone(),
                what: "checkpoint model_type",
                found: model_type,
                supported: SUPPORTED_MODELS.to_owned(),
            })
        }
    };
    // A CLIPModel's sub-configs may leave their model_type out.
    let (default_vision, default_text) = match architecture {
        Architecture::Clip => ("clip_vision_model", "clip_text_model"),
        Architecture::VisionTextDualEncoder => ("", ""),
    };
    let (vision_type, vision, vision_prefix) =
        VisionTower::from_config(&config.child("vision_config")?, default_vision)?;
    let (text_type, text, text_prefix) =
        TextTower::from_config(&config.child("text_config")?, default_text)?;
    let projection_dim = config.usize_or("projection_dim", 512)?;

    // Read everything that can fail cheaply before the weights.
    let (processor_path, processor_json) = preprocessor::load(checkpoint_dir)?;
    let image =
        preprocessor::to_manifest(&processor_path, &processor_json, vision.image_size() as u32)?;
    let (tokenizer_bytes, text_preprocess) = tokenizer::load(
        checkpoint_dir,
        text.tokenizer_family(),
        text.max_length(),
        text.pad_token_id(),
        text.inputs(),
    )?;

    progress("reading weights");
    let weights = Weights::load(checkpoint_dir)?;
    check_layer_count(
        &weights,
        "vision_model.",
        vision.num_layers(),
        &config_path,
        format!("{vision_prefix}num_hidden_layers"),
    )?;
    check_layer_count(
        &weights,
        "text_model.",
        text.num_layers(),
        &config_path,
        format!("{text_prefix}num_hidden_layers"),
    )?;
    let logit_scale = weights.get("logit_scale", &[])?;
    let logit_scale = match logit_scale.data.as_slice() {
        [x] => *x,
        _ => {
            return Err(Error::WeightShape {
                name: "logit_scale".to_owned(),
                expected: vec![],
                found: logit_scale.shape.clone(),
            })
        }
    };

    // The manifest, with placeholders for the hashes of the files not written yet: the
    // package is checked against the contract before anything is written, so that the
    // exporter never writes a package the runtime would refuse.
    let pending = |file: &str, output_dim: usize| GraphFile {
        file: file.to_owned(),
        opset: onnx::OPSET,
        precision: Precision::Fp32,
        sha256: "0".repeat(64),
        weights: Some(WeightsFile {
            file: format!("{file}.data"),
            sha256: "0".repeat(64),
        }),
        output_dim,
        variants: Vec::new(),
    };
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        source: Source {
            architecture: architecture.name().to_owned(),
            vision_model_type: vision_type,
            text_model_type: text_type,
        },
        projection_dim,
        logit_scale,
        image,
        text: text_preprocess,
        tokenizer_sha256: Some(vtde_package::sha256_bytes(&tokenizer_bytes)),
        graphs: Graphs {
            vision: pending("vision.onnx", vision.output_dim()),
            text: pending("text.onnx", text.output_dim()),
            projection: pending("projection.onnx", projection_dim),
        },
        producer: Producer {
            name: "vtde-export".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    };
    let sources = ContractSources {
        checkpoint_dir,
        logit_scale: weights.file_of("logit_scale").unwrap_or(checkpoint_dir),
        config: &config_path,
        processor: &processor_path,
        vision_prefix: &vision_prefix,
        text_prefix: &text_prefix,
    };
    vtde_package::check_manifest(&manifest).map_err(|p| sources.error(p))?;

    let writer = PackageWriter::create(out_dir)?;
    let graph = |file: &str, model: ModelProto, output_dim: usize| -> Result<GraphFile> {
        let written = writer.write_model(file, model)?;
        Ok(GraphFile {
            file: file.to_owned(),
            opset: onnx::OPSET,
            precision: Precision::Fp32,
            sha256: written.sha256,
            weights: Some(written.weights),
            output_dim,
            variants: Vec::new(),
        })
    };
    progress("building vision.onnx");
    manifest.graphs.vision = graph(
        "vision.onnx",
        vision.build(&weights, "vision_model.", Precision::Fp32)?,
        vision.output_dim(),
    )?;
    progress("building text.onnx");
    manifest.graphs.text = graph(
        "text.onnx",
        text.build(&weights, "text_model.", Precision::Fp32)?,
        text.output_dim(),
    )?;
    progress("building projection.onnx");
    manifest.graphs.projection = graph(
        "projection.onnx",
        projection::build(
            &projection::ProjectionConfig {
                vision_dim: vision.output_dim(),
                text_dim: text.output_dim(),
                projection_dim,
                visual_module: "visual_projection",
                text_module: "text_projection",
            },
            &weights,
        )?,
        projection_dim,
    )?;
    for &precision in &options.variants {
        if precision == Precision::Fp32 {
            continue;
        }
        // One graph in memory at a time: a tower's graph is as large as its weights.
        for name in ["vision", "text"] {
            let file = format!("{name}.{}.onnx", precision.name());
            progress(&format!("building {file}"));
            let (model, entry) = if name == "vision" {
                let model = vision.build(&weights, "vision_model.", precision)?;
                (model, &mut manifest.graphs.vision)
            } else {
                (
                    text.build(&weights, "text_model.", precision)?,
                    &mut manifest.graphs.text,
                )
            };
            let written = writer.write_model(&file, model)?;
            entry.variants.push(GraphVariant {
                file,
                precision,
                sha256: written.sha256,
                weights: Some(written.weights),
            });
        }
    }
    let tokenizer_sha256 = writer.write_bytes(tokenizer::TOKENIZER_FILE, &tokenizer_bytes)?;
    manifest.tokenizer_sha256 = Some(tokenizer_sha256);

    // The complete manifest once more, as the runtime will read it.
    let manifest_path = out_dir.join(MANIFEST_FILE);
    vtde_package::validate_manifest(&manifest_path, &manifest).map_err(|e| Error::Contract {
        source_file: checkpoint_dir.to_owned(),
        source_field: "the checkpoint".to_owned(),
        problem: e.to_string(),
    })?;
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Write {
        path: manifest_path.clone(),
        source: std::io::Error::other(e),
    })?;
    writer.write_bytes(MANIFEST_FILE, &json)?;
    progress("done");
    Ok(Exported {
        dir: out_dir.to_owned(),
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkpoint::Tensor;

    #[test]
    fn layer_indices_are_read_from_every_naming() {
        assert_eq!(layer_index("encoder.layer.3.output.dense.weight"), Some(3));
        assert_eq!(layer_index("encoder.layers.11.mlp.fc1.weight"), Some(11));
        assert_eq!(layer_index("layers.0.attention.q_proj.weight"), Some(0));
        assert_eq!(layer_index("vision_model.encoder.layers.7.x"), Some(7));
        // `layernorm`, `pre_layrnorm` and a `layer` segment without a number are no
        // layer index.
        assert_eq!(layer_index("layernorm.weight"), None);
        assert_eq!(layer_index("embeddings.layer.weight"), None);
        assert_eq!(layer_index("pooler.dense.weight"), None);
    }

    #[test]
    fn a_config_with_fewer_layers_than_the_weights_is_an_error() {
        let t = || Tensor {
            shape: vec![1],
            data: vec![0.0],
        };
        let weights = Weights::from_tensors([
            ("vision_model.encoder.layer.0.w".to_owned(), t()),
            ("vision_model.encoder.layer.2.w".to_owned(), t()),
            ("text_model.encoder.layer.5.w".to_owned(), t()),
        ]);
        let config = Path::new("ckpt/config.json");
        let field = || "vision_config.num_hidden_layers".to_owned();
        check_layer_count(&weights, "vision_model.", 3, config, field()).unwrap();
        match check_layer_count(&weights, "vision_model.", 2, config, field()) {
            Err(Error::LayerCount {
                configured: 2,
                found: 2,
                example,
                ..
            }) => assert_eq!(example, "vision_model.encoder.layer.2.w"),
            other => panic!("unexpected {other:?}"),
        }
        // Each tower counts its own layers only.
        assert!(check_layer_count(&weights, "text_model.", 0, config, field()).is_err());
    }
}
