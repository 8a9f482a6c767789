//! The checkpoint's image processor config → the manifest's [`ImagePreprocess`].
//!
//! transformers 5 saves the image processor inside `processor_config.json` (key
//! `image_processor`); older and most published checkpoints have
//! `preprocessor_config.json`. Both are read. Keys the file leaves out take the defaults
//! of the processor class it names, as transformers does.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use vtde_package::manifest::{
    ImagePreprocess, Normalize, ResampleFilter, Resize, ResizeRule, Size,
};

use crate::checkpoint::{read_json, ConfigView};
use crate::error::{Error, Result};

const IMAGENET_STANDARD_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
const IMAGENET_STANDARD_STD: [f32; 3] = [0.5, 0.5, 0.5];
const OPENAI_CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const OPENAI_CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// A processor family's defaults (the class attributes of its transformers class).
struct Defaults {
    size: Json,
    resample: u32,
    crop: Option<(u32, u32)>,
    mean: [f32; 3],
    std: [f32; 3],
    /// Whether `size` given as a bare integer means a square (`default_to_square`).
    int_size_is_square: bool,
}

fn defaults_for(family: &str) -> Option<Defaults> {
    Some(match family {
        "ViTImageProcessor" => Defaults {
            size: serde_json::json!({"height": 224, "width": 224}),
            resample: 2,
            crop: None,
            mean: IMAGENET_STANDARD_MEAN,
            std: IMAGENET_STANDARD_STD,
            int_size_is_square: true,
        },
        "DeiTImageProcessor" => Defaults {
            size: serde_json::json!({"height": 256, "width": 256}),
            resample: 3,
            crop: Some((224, 224)),
            mean: IMAGENET_STANDARD_MEAN,
            std: IMAGENET_STANDARD_STD,
            int_size_is_square: true,
        },
        "BeitImageProcessor" => Defaults {
            size: serde_json::json!({"height": 224, "width": 224}),
            resample: 3,
            crop: None,
            mean: IMAGENET_STANDARD_MEAN,
            std: IMAGENET_STANDARD_STD,
            int_size_is_square: true,
        },
        "CLIPImageProcessor" => Defaults {
            size: serde_json::json!({"shortest_edge": 224}),
            resample: 3,
            crop: Some((224, 224)),
            mean: OPENAI_CLIP_MEAN,
            std: OPENAI_CLIP_STD,
            int_size_is_square: false,
        },
        _ => return None,
    })
}

const SUPPORTED: &str =
    "ViTImageProcessor, DeiTImageProcessor, BeitImageProcessor, CLIPImageProcessor \
     (and their Pil and Fast variants)";

/// Finds and reads the image processor config of the checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<(PathBuf, Json)> {
    let legacy = dir.join("preprocessor_config.json");
    if legacy.is_file() {
        return Ok((legacy.clone(), read_json(&legacy)?));
    }
    let combined = dir.join("processor_config.json");
    if combined.is_file() {
        let json = read_json(&combined)?;
        return match json.get("image_processor") {
            Some(inner) if inner.is_object() => Ok((combined, inner.clone())),
            _ => Err(Error::Config {
                path: combined,
                problem: "has no `image_processor` object".to_owned(),
            }),
        };
    }
    Err(Error::MissingFile {
        path: legacy,
        hint: "the checkpoint needs preprocessor_config.json or processor_config.json \
               (save the image processor with save_pretrained)"
            .to_owned(),
    })
}

/// Translates an image processor config into the manifest's preprocessing, checking that
/// its output size is the `image_size` the vision tower takes.
pub fn to_manifest(path: &Path, json: &Json, image_size: u32) -> Result<ImagePreprocess> {
    let cfg = ConfigView::new(path, json);
    let class = cfg.str_or("image_processor_type", "ViTImageProcessor")?;
    // `ViTImageProcessorPil` and `...Fast` are backends of one processor: same semantics.
    let family = class
        .strip_suffix("Pil")
        .or_else(|| class.strip_suffix("Fast"))
        .unwrap_or(&class);
    let defaults = defaults_for(family).ok_or_else(|| Error::Unsupported {
        path: path.to_owned(),
        what: "image processor",
        found: class.clone(),
        supported: SUPPORTED.to_owned(),
    })?;

    let resize = if cfg.bool_or("do_resize", true)? {
        let size = json
            .get("size")
            .filter(|v| !v.is_null())
            .unwrap_or(&defaults.size);
        let rule = size_rule(&cfg, size, defaults.int_size_is_square)?;
        let code = cfg.usize_or("resample", defaults.resample as usize)? as u32;
        let filter = ResampleFilter::from_pil_code(code).ok_or_else(|| {
            cfg.problem("resample", &format!("is {code}, not a PIL filter (0-5)"))
        })?;
        Some(Resize { rule, filter })
    } else {
        None
    };

    let center_crop = if cfg.bool_or("do_center_crop", defaults.crop.is_some())? {
        // BEiT crops only when asked to; its default crop_size is 224×224.
        let (dh, dw) = defaults.crop.unwrap_or((224, 224));
        Some(match json.get("crop_size").filter(|v| !v.is_null()) {
            None => Size {
                height: dh,
                width: dw,
            },
            Some(crop) => match size_rule(&cfg, crop, true)? {
                ResizeRule::Exact { height, width } => Size { height, width },
                ResizeRule::ShortestEdge { .. } => {
                    return Err(cfg.problem("crop_size", "should give height and width"))
                }
            },
        })
    } else {
        None
    };

    let rescale_factor = if cfg.bool_or("do_rescale", true)? {
        Some(cfg.f32_or("rescale_factor", 1.0 / 255.0)?)
    } else {
        None
    };
    let normalize = if cfg.bool_or("do_normalize", true)? {
        Some(Normalize {
            mean: triple(&cfg, "image_mean", defaults.mean)?,
            std: triple(&cfg, "image_std", defaults.std)?,
        })
    } else {
        None
    };

    // The size of pixel_values: the crop if any, else an exact resize.
    let out = match (&center_crop, &resize) {
        (Some(crop), _) => *crop,
        (
            None,
            Some(Resize {
                rule: ResizeRule::Exact { height, width },
                ..
            }),
        ) => Size {
            height: *height,
            width: *width,
        },
        _ => {
            return Err(Error::Config {
                path: path.to_owned(),
                problem: "the processor gives images of varying size (no exact resize and no \
                          center crop); the vision graph needs a fixed size"
                    .to_owned(),
            })
        }
    };
    if out.height != image_size || out.width != image_size {
        return Err(Error::Config {
            path: path.to_owned(),
            problem: format!(
                "the processor makes {}×{} images but the vision tower takes {image_size}×{image_size}",
                out.height, out.width
            ),
        });
    }

    Ok(ImagePreprocess {
        height: out.height,
        width: out.width,
        // The towers take 3 channels; converting is the only way grayscale, palette and
        // alpha images can reach them, whatever `do_convert_rgb` says.
        convert_rgb: true,
        resize,
        center_crop,
        rescale_factor,
        normalize,
    })
}

fn size_rule(cfg: &ConfigView, size: &Json, int_is_square: bool) -> Result<ResizeRule> {
    let get = |k: &str| size.get(k).and_then(Json::as_u64).map(|n| n as u32);
    if let Some(n) = size.as_u64() {
        let n = n as u32;
        return Ok(if int_is_square {
            ResizeRule::Exact {
                height: n,
                width: n,
            }
        } else {
            ResizeRule::ShortestEdge { shortest_edge: n }
        });
    }
    if let (Some(height), Some(width)) = (get("height"), get("width")) {
        return Ok(ResizeRule::Exact { height, width });
    }
    if let Some(shortest_edge) = get("shortest_edge") {
        if get("longest_edge").is_some() {
            return Err(cfg.problem(
                "size",
                "has `longest_edge`, which vtde does not support yet",
            ));
        }
        return Ok(ResizeRule::ShortestEdge { shortest_edge });
    }
    Err(cfg.problem(
        "size",
        &format!("is {size}; expected height and width, or shortest_edge"),
    ))
}

fn triple(cfg: &ConfigView, key: &str, default: [f32; 3]) -> Result<[f32; 3]> {
    match cfg.json.get(key).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(Json::Number(n)) => {
            let x = n.as_f64().unwrap_or_default() as f32;
            Ok([x, x, x])
        }
        Some(Json::Array(items)) => {
            let xs: Vec<f32> = items
                .iter()
                .filter_map(Json::as_f64)
                .map(|x| x as f32)
                .collect();
            match xs.as_slice() {
                [a, b, c] => Ok([*a, *b, *c]),
                _ => Err(cfg.problem(key, "should have three numbers (R, G, B)")),
            }
        }
        Some(_) => Err(cfg.problem(key, "should be a list of three numbers")),
    }
}
