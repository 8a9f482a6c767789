//! Composing a dual encoder from two pretrained checkpoints, as transformers'
//! `VisionTextDualEncoderModel.from_vision_text_pretrained` followed by `save_pretrained`
//! does, without Python: the towers' weights are renamed to the dual encoder's layout
//! (`vision_model.*`, `text_model.*`; a CLIP vision tower is a `CLIPVisionModel`, so its
//! weights become `vision_model.vision_model.*`), heads the dual encoder does not use
//! (classifiers, language-model heads, CLIP's own projections) are dropped and listed, a
//! pooler that the source lacks but the dual encoder uses is initialised as transformers
//! initialises it, and the new projections and `logit_scale` are initialised as
//! `VisionTextDualEncoderModel._init_weights` does (weights `N(0, σ²)` with σ the text
//! config's `initializer_range`, default 0.02; `logit_scale = logit_scale_init_value`),
//! from a seeded generator (not torch's). The tokenizer files come from the text
//! checkpoint, the image processor from the vision checkpoint.
//!
//! Accepted sources: checkpoints whose `model_type` is `vit`, `deit`, `beit`,
//! `clip_vision_model` or `clip` (vision); `bert`, `roberta`, `xlm-roberta`,
//! `clip_text_model` or `clip` (text); either tower of a `vision-text-dual-encoder`; the
//! base model or a task model built on it (`ViTForImageClassification`,
//! `BertForMaskedLM`, ...); and a sentence-transformers folder (`modules.json`), whose
//! Transformer module is used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::weights_file::{self, OutTensor};

/// The vision `model_type`s [`compose`] takes.
pub const COMPOSE_VISION: &str =
    "vit, deit, beit, clip_vision_model, clip, vision-text-dual-encoder";
/// The text `model_type`s [`compose`] takes.
pub const COMPOSE_TEXT: &str =
    "bert, roberta, xlm-roberta, clip_text_model, clip, vision-text-dual-encoder, a sentence-transformers folder";

/// Tokenizer files copied from the text checkpoint when present.
const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
];

/// [`compose`]'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeOptions {
    /// The projections' output size.
    pub projection_dim: usize,
    /// `logit_scale_init_value` (and the initial `logit_scale`).
    pub logit_scale: f32,
    /// Seeds the projections' (and any initialised pooler's) random values.
    pub seed: u64,
}

impl Default for ComposeOptions {
    /// transformers' defaults: projection 512, logit scale 2.6592 (ln(1/0.07)).
    fn default() -> Self {
        ComposeOptions {
            projection_dim: 512,
            logit_scale: 2.6592,
            seed: 0,
        }
    }
}

/// What [`compose`] did with one tower.
#[derive(Debug, Clone, PartialEq)]
pub struct TowerReport {
    /// The directory the weights came from (a sentence-transformers folder's module).
    pub source: PathBuf,
    /// The tower's `model_type` in the dual encoder's config.
    pub model_type: String,
    /// The feature size the projection takes (`hidden_size`).
    pub hidden_size: usize,
    /// Weights copied.
    pub copied: usize,
    /// Weights of the source left out (heads the dual encoder does not use, buffers).
    pub dropped: Vec<String>,
    /// Weights the dual encoder uses that the source lacked, initialised (a pooler).
    pub initialised: Vec<String>,
}

/// What [`compose`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// The vision tower.
    pub vision: TowerReport,
    /// The text tower.
    pub text: TowerReport,
    /// The files written.
    pub files: Vec<String>,
}

/// A tower's weights, by source name, over the bytes of its safetensors files.
struct SourceWeights {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl SourceWeights {
    fn load(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let paths = if single.is_file() {
            vec![single]
        } else if index.is_file() {
            let json = read_json(&index)?;
            let map = json
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| Error::invalid(&index, "no \"weight_map\" object"))?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            shards.sort();
            shards.dedup();
            let mut paths = Vec::new();
            for shard in shards {
                if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') {
                    return Err(Error::invalid(
                        &index,
                        format!("shard name {shard:?} is not a file in this directory"),
                    ));
                }
                paths.push(dir.join(shard));
            }
            paths
        } else {
            let hint = if dir.join("pytorch_model.bin").is_file() {
                " (it has only pytorch_model.bin: save it with safetensors, e.g. save_pretrained(..., safe_serialization=True))"
            } else {
                ""
            };
            return Err(Error::invalid(
                dir,
                format!("no model.safetensors or model.safetensors.index.json{hint}"),
            ));
        };
        let mut files = Vec::new();
        for path in paths {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            SafeTensors::deserialize(&bytes)
                .map_err(|e| Error::invalid(&path, format!("not a safetensors file: {e}")))?;
            files.push((path, bytes));
        }
        Ok(SourceWeights { files })
    }

    /// Every weight: name → (file, view).
    fn tensors(&self) -> Result<BTreeMap<String, (PathBuf, TensorView<'_>)>> {
        let mut all = BTreeMap::new();
        for (path, bytes) in &self.files {
            let file = SafeTensors::deserialize(bytes)
                .map_err(|e| Error::invalid(path, format!("not a safetensors file: {e}")))?;
            for (name, view) in file.tensors() {
                all.insert(name, (path.clone(), view));
            }
        }
        Ok(all)
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::invalid(path, format!("not valid JSON: {e}")))
}

/// Which side of the dual encoder a tower goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Vision,
    Text,
}

impl Side {
    fn prefix(self) -> &'static str {
        match self {
            Side::Vision => "vision_model.",
            Side::Text => "text_model.",
        }
    }

    fn config_key(self) -> &'static str {
        match self {
            Side::Vision => "vision_config",
            Side::Text => "text_config",
        }
    }
}

/// A tower located in a checkpoint: its config, and where its weights sit.
struct TowerSource {
    dir: PathBuf,
    config: Map<String, Value>,
    model_type: String,
    /// Wrappers the base model's weights may sit under in the source, most specific
    /// first (`vit.` in `ViTForImageClassification`, `vision_model.` in a `CLIPModel`,
    /// `vision_model.vision_model.` in a transformers 4 dual encoder; `` for none): the
    /// first one under which some weight matches [`base_weights`] is stripped.
    wrappers: Vec<&'static str>,
}

/// What the weights of a tower's base model start with, as transformers 5 names them
/// (a `CLIPVisionModel` is flat: `embeddings.`, `pre_layrnorm.`, ...). In the dual
/// encoder they go under `vision_model.` or `text_model.` unchanged.
fn base_weights(model_type: &str) -> &'static [&'static str] {
    match model_type {
        "vit" | "deit" | "beit" => &["embeddings.", "encoder.", "layernorm.", "pooler."],
        "clip_vision_model" => &[
            "embeddings.",
            "pre_layrnorm.",
            "encoder.",
            "post_layernorm.",
        ],
        "clip_text_model" => &["embeddings.", "encoder.", "final_layer_norm."],
        _ => &["embeddings.", "encoder.", "pooler."],
    }
}

/// Finds the transformer module of a sentence-transformers folder, or the folder itself.
fn model_dir(dir: &Path) -> Result<PathBuf> {
    if dir.join("config.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    let modules = dir.join("modules.json");
    if modules.is_file() {
        let json = read_json(&modules)?;
        let transformer = json.as_array().and_then(|list| {
            list.iter().find(|m| {
                m.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with(".Transformer"))
            })
        });
        let path = transformer
            .and_then(|m| m.get("path"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::invalid(
                    &modules,
                    "no sentence_transformers.models.Transformer module",
                )
            })?;
        if path.split(['/', '\\']).any(|part| part == "..") {
            return Err(Error::invalid(
                &modules,
                format!("module path {path:?} leaves the folder"),
            ));
        }
        let sub = dir.join(path);
        if sub.join("config.json").is_file() {
            return Ok(sub);
        }
        return Err(Error::invalid(
            &modules,
            format!("the Transformer module's folder {path:?} has no config.json"),
        ));
    }
    Err(Error::invalid(
        dir,
        "no config.json (nor a sentence-transformers modules.json)",
    ))
}

fn tower_source(dir: &Path, side: Side) -> Result<TowerSource> {
    let dir = model_dir(dir)?;
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    let object = config
        .as_object()
        .ok_or_else(|| Error::invalid(&config_path, "not a JSON object"))?
        .clone();
    let type_of = |c: &Map<String, Value>| {
        c.get("model_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let model_type = type_of(&object);
    let sub = |c: &Map<String, Value>, key: &str| -> Result<Map<String, Value>> {
        c.get(key)
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| Error::invalid(&config_path, format!("no \"{key}\" object")))
    };
    let unsupported = |found: &str| {
        let (what, supported) = match side {
            Side::Vision => ("vision", COMPOSE_VISION),
            Side::Text => ("text", COMPOSE_TEXT),
        };
        Error::invalid(
            &config_path,
            format!(
                "model_type {found:?} is not a {what} tower vtde composes (supported: {supported})"
            ),
        )
    };
    let clip_type = match side {
        Side::Vision => "clip_vision_model",
        Side::Text => "clip_text_model",
    };
    // (the tower's config, its model_type, the wrappers of its weights)
    let (mut config, tower_type, wrappers): (Map<String, Value>, String, Vec<&'static str>) =
        match model_type.as_str() {
            "vision-text-dual-encoder" => {
                let mut inner = sub(&object, side.config_key())?;
                let mut inner_type = type_of(&inner);
                if inner_type == "clip" {
                    // A whole CLIPConfig in an older dual encoder: its half is used.
                    inner = sub(&inner, side.config_key())?;
                    inner_type = clip_type.to_owned();
                }
                let wrappers = match (side, inner_type.as_str()) {
                    (Side::Vision, "clip_vision_model") => {
                        vec!["vision_model.vision_model.", "vision_model."]
                    }
                    (Side::Text, "clip_text_model") => {
                        vec!["text_model.text_model.", "text_model."]
                    }
                    (Side::Vision, "vit" | "deit" | "beit") => vec!["vision_model."],
                    (Side::Text, "bert" | "roberta" | "xlm-roberta") => vec!["text_model."],
                    (_, other) => return Err(unsupported(other)),
                };
                (inner, inner_type, wrappers)
            }
            "clip" => {
                let wrapper = match side {
                    Side::Vision => "vision_model.",
                    Side::Text => "text_model.",
                };
                (
                    sub(&object, side.config_key())?,
                    clip_type.to_owned(),
                    vec![wrapper],
                )
            }
            "clip_vision_model" if side == Side::Vision => (
                object.clone(),
                model_type.clone(),
                vec!["vision_model.", ""],
            ),
            "clip_text_model" if side == Side::Text => {
                (object.clone(), model_type.clone(), vec!["text_model.", ""])
            }
            "vit" | "deit" | "beit" if side == Side::Vision => {
                let wrapper = match model_type.as_str() {
                    "vit" => "vit.",
                    "deit" => "deit.",
                    _ => "beit.",
                };
                (object.clone(), model_type.clone(), vec![wrapper, ""])
            }
            "bert" if side == Side::Text => (object.clone(), model_type.clone(), vec!["bert.", ""]),
            "roberta" | "xlm-roberta" if side == Side::Text => {
                (object.clone(), model_type.clone(), vec!["roberta.", ""])
            }
            other => return Err(unsupported(other)),
        };
    config.insert("model_type".into(), json!(tower_type));
    Ok(TowerSource {
        dir,
        config,
        model_type: tower_type,
        wrappers,
    })
}

fn usize_field(config: &Map<String, Value>, key: &str, path: &Path) -> Result<usize> {
    config
        .get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            Error::invalid(
                path,
                format!("the tower config has no positive integer \"{key}\""),
            )
        })
}

/// Copies one tower's weights into `out` under the dual encoder's names; returns its
/// report.
fn add_tower(
    source: &TowerSource,
    side: Side,
    rng: &mut SplitMix64,
    out: &mut BTreeMap<String, OutTensor>,
) -> Result<TowerReport> {
    let weights = SourceWeights::load(&source.dir)?;
    let tensors = weights.tensors()?;
    let base = base_weights(&source.model_type);
    let belongs = |name: &str, wrapper: &str| {
        name.strip_prefix(wrapper)
            .is_some_and(|rest| base.iter().any(|b| rest.starts_with(b)))
    };
    let wrapper = source
        .wrappers
        .iter()
        .copied()
        .find(|w| tensors.keys().any(|name| belongs(name, w)))
        .unwrap_or("");
    let config_path = source.dir.join("config.json");
    let hidden_size = usize_field(&source.config, "hidden_size", &config_path)?;
    let mut report = TowerReport {
        source: source.dir.clone(),
        model_type: source.model_type.clone(),
        hidden_size,
        copied: 0,
        dropped: Vec::new(),
        initialised: Vec::new(),
    };
    for (name, (_, view)) in &tensors {
        // Position ids are a buffer transformers 5 rebuilds rather than loads.
        let inner = name
            .strip_prefix(wrapper)
            .filter(|_| belongs(name, wrapper) && !name.ends_with("position_ids"));
        let Some(inner) = inner else {
            report.dropped.push(name.clone());
            continue;
        };
        let target = format!("{}{inner}", side.prefix());
        out.insert(target, OutTensor::copy_of(view));
        report.copied += 1;
    }
    if report.copied == 0 {
        return Err(Error::invalid(
            &source.dir,
            format!(
                "none of its weights belong to a {} tower",
                source.model_type
            ),
        ));
    }
    // The pooler the dual encoder's AutoModel builds (add_pooling_layer=True) when the
    // source was saved without it (e.g. ViTForImageClassification, BertForMaskedLM).
    let prefix = side.prefix();
    let std = source
        .config
        .get("initializer_range")
        .and_then(Value::as_f64)
        .unwrap_or(0.02);
    match source.model_type.as_str() {
        "vit" | "deit" | "bert" | "roberta" | "xlm-roberta" => {
            let weight = format!("{prefix}pooler.dense.weight");
            if !out.contains_key(&weight) {
                let pooled = source
                    .config
                    .get("pooler_output_size")
                    .and_then(Value::as_u64)
                    .map_or(hidden_size, |v| v as usize);
                let values: Vec<f32> = (0..pooled * hidden_size)
                    .map(|_| (rng.normal() * std) as f32)
                    .collect();
                out.insert(
                    weight.clone(),
                    OutTensor::f32(vec![pooled, hidden_size], values),
                );
                let bias = format!("{prefix}pooler.dense.bias");
                out.insert(
                    bias.clone(),
                    OutTensor::f32(vec![pooled], vec![0.0; pooled]),
                );
                report.initialised.extend([weight, bias]);
            }
        }
        "beit" => {
            let mean_pooling = source
                .config
                .get("use_mean_pooling")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let weight = format!("{prefix}pooler.layernorm.weight");
            if mean_pooling && !out.contains_key(&weight) {
                out.insert(
                    weight.clone(),
                    OutTensor::f32(vec![hidden_size], vec![1.0; hidden_size]),
                );
                let bias = format!("{prefix}pooler.layernorm.bias");
                out.insert(
                    bias.clone(),
                    OutTensor::f32(vec![hidden_size], vec![0.0; hidden_size]),
                );
                report.initialised.extend([weight, bias]);
            }
        }
        _ => {}
    }
    Ok(report)
}

/// Config fields that describe the saved source model rather than the tower.
const SOURCE_ONLY_FIELDS: &[&str] = &["architectures", "_name_or_path", "transformers_version"];

fn tower_config(source: &TowerSource) -> Value {
    let mut config = source.config.clone();
    for field in SOURCE_ONLY_FIELDS {
        config.remove(*field);
    }
    config.insert("model_type".into(), json!(source.model_type));
    Value::Object(config)
}

/// The image processor settings of the vision checkpoint: `processor_config.json`'s
/// `image_processor`, else `preprocessor_config.json`.
fn image_processor(dir: &Path) -> Result<Value> {
    let combined = dir.join("processor_config.json");
    if combined.is_file() {
        if let Some(inner) = read_json(&combined)?.get("image_processor") {
            return Ok(inner.clone());
        }
    }
    let legacy = dir.join("preprocessor_config.json");
    if legacy.is_file() {
        return read_json(&legacy);
    }
    Err(Error::invalid(
        dir,
        "no preprocessor_config.json or processor_config.json: the vision checkpoint's image processor settings are needed (how images are resized and normalised)",
    ))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Composes the vision checkpoint `vision_dir` and the text checkpoint `text_dir` into a
/// `VisionTextDualEncoderModel` checkpoint in `out_dir` (created; it must be empty or
/// absent): `config.json`, `model.safetensors`, the text checkpoint's tokenizer files
/// and `processor_config.json` with the vision checkpoint's image processor.
///
/// ```no_run
/// use vtde_fit::{compose, ComposeOptions};
///
/// # fn main() -> vtde_fit::Result<()> {
/// let options = ComposeOptions { projection_dim: 256, ..ComposeOptions::default() };
/// let composed = compose("vit-base-patch16-224", "all-MiniLM-L6-v2", "my-encoder", &options)?;
/// for dropped in &composed.vision.dropped {
///     println!("not used by the dual encoder: {dropped}"); // e.g. classifier.weight
/// }
/// # Ok(())
/// # }
/// ```
pub fn compose(
    vision_dir: impl AsRef<Path>,
    text_dir: impl AsRef<Path>,
    out_dir: impl AsRef<Path>,
    options: &ComposeOptions,
) -> Result<Composed> {
    let (vision_dir, text_dir, out_dir) =
        (vision_dir.as_ref(), text_dir.as_ref(), out_dir.as_ref());
    if options.projection_dim == 0 {
        return Err(Error::Settings(
            "the projection size must be at least 1".into(),
        ));
    }
    if !options.logit_scale.is_finite() {
        return Err(Error::Settings(format!(
            "logit scale {} is not a finite number",
            options.logit_scale
        )));
    }
    let vision = tower_source(vision_dir, Side::Vision)?;
    let text = tower_source(text_dir, Side::Text)?;
    let processor = image_processor(&model_dir(vision_dir)?)?;
    let tokenizer_dir = text.dir.clone();
    let tokenizer_files: Vec<&str> = TOKENIZER_FILES
        .iter()
        .copied()
        .filter(|f| tokenizer_dir.join(f).is_file() || (text_dir.join(f).is_file()))
        .collect();
    if tokenizer_files.is_empty() {
        return Err(Error::invalid(
            text_dir,
            "no tokenizer files (tokenizer.json, vocab.txt, vocab.json + merges.txt, ...)",
        ));
    }

    if out_dir.exists() {
        let mut entries = std::fs::read_dir(out_dir).map_err(|e| Error::io(out_dir, e))?;
        if entries.next().is_some() {
            return Err(Error::invalid(
                out_dir,
                "exists and is not empty: compose writes a new checkpoint directory",
            ));
        }
    }

    let mut rng = SplitMix64::new(options.seed);
    let mut tensors = BTreeMap::new();
    let vision_report = add_tower(&vision, Side::Vision, &mut rng, &mut tensors)?;
    let text_report = add_tower(&text, Side::Text, &mut rng, &mut tensors)?;
    let text_config = tower_config(&text);
    // VisionTextDualEncoderConfig has no initializer_range: _init_weights takes the text
    // config's (get_text_config()), 0.02 when it has none.
    let std = text_config
        .get("initializer_range")
        .and_then(Value::as_f64)
        .unwrap_or(0.02);
    let p = options.projection_dim;
    let heads = crate::heads::Heads::random(
        vision_report.hidden_size,
        text_report.hidden_size,
        p,
        std,
        options.logit_scale,
        &mut rng,
    );
    weights_file::insert_heads(&mut tensors, &heads);

    // Created only now, so that a source that fails leaves nothing behind.
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let weights_path = out_dir.join("model.safetensors");
    weights_file::write(&weights_path, &tensors)?;

    let config = json!({
        "architectures": ["VisionTextDualEncoderModel"],
        "model_type": "vision-text-dual-encoder",
        "projection_dim": p,
        "logit_scale_init_value": options.logit_scale,
        "vision_config": tower_config(&vision),
        "text_config": text_config,
    });
    let mut files = vec!["config.json".to_owned(), "model.safetensors".to_owned()];
    write_file(
        &out_dir.join("config.json"),
        format!("{config:#}\n").as_bytes(),
    )?;
    let processor_config = json!({
        "image_processor": processor,
        "processor_class": "VisionTextDualEncoderProcessor",
    });
    write_file(
        &out_dir.join("processor_config.json"),
        format!("{processor_config:#}\n").as_bytes(),
    )?;
    files.push("processor_config.json".into());
    for file in tokenizer_files {
        let from = if tokenizer_dir.join(file).is_file() {
            tokenizer_dir.join(file)
        } else {
            text_dir.join(file)
        };
        let to = out_dir.join(file);
        std::fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
        files.push(file.to_owned());
    }
    Ok(Composed {
        dir: out_dir.to_path_buf(),
        vision: vision_report,
        text: text_report,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
    }

    #[test]
    fn refusals_name_the_file_and_the_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let vit_bert = fixtures().join("vit-bert-tiny/checkpoint");
        let options = ComposeOptions {
            projection_dim: 8,
            ..ComposeOptions::default()
        };

        // A text checkpoint as the vision tower.
        let text_only = tmp.path().join("bert");
        std::fs::create_dir(&text_only).unwrap();
        std::fs::write(
            text_only.join("config.json"),
            r#"{"model_type": "bert", "hidden_size": 8}"#,
        )
        .unwrap();
        let err = compose(&text_only, &vit_bert, tmp.path().join("a"), &options)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json") && err.contains("\"bert\" is not a vision tower"),
            "{err}"
        );

        // No weights in safetensors.
        std::fs::write(text_only.join("pytorch_model.bin"), b"").unwrap();
        std::fs::write(text_only.join("vocab.txt"), "[PAD]\n").unwrap();
        let err = compose(&vit_bert, &text_only, tmp.path().join("b"), &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only pytorch_model.bin"), "{err}");
        assert!(
            !tmp.path().join("b").exists(),
            "a failed compose leaves no directory"
        );

        // An output directory that holds files.
        let busy = tmp.path().join("busy");
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("x"), b"").unwrap();
        let err = compose(&vit_bert, &vit_bert, &busy, &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not empty"), "{err}");

        // Same sources and seed, same bytes; another seed, other heads.
        let (a, b, c) = (
            tmp.path().join("c1"),
            tmp.path().join("c2"),
            tmp.path().join("c3"),
        );
        compose(&vit_bert, &vit_bert, &a, &options).unwrap();
        compose(&vit_bert, &vit_bert, &b, &options).unwrap();
        compose(
            &vit_bert,
            &vit_bert,
            &c,
            &ComposeOptions {
                seed: 1,
                ..options.clone()
            },
        )
        .unwrap();
        let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
        assert_eq!(weights(&a), weights(&b));
        assert_ne!(weights(&a), weights(&c));
        let heads = crate::read_heads(&a).unwrap();
        assert_eq!(heads.visual_projection.dim(), (8, 32));
        assert_eq!(heads.logit_scale, 2.6592);
    }
}
