//! The heads of a dual encoder checkpoint: read from its safetensors
//! (`visual_projection.weight`, `text_projection.weight`, `logit_scale`, any of f32, f16
//! or bf16), and a copy of the checkpoint with fitted heads written in their place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::heads::Heads;
use crate::weights_file::{self, OutTensor};

/// The weight names of the heads.
pub const HEAD_WEIGHTS: [&str; 3] = [
    "visual_projection.weight",
    "text_projection.weight",
    "logit_scale",
];

/// The safetensors files of a checkpoint: `model.safetensors`, or the shards its index
/// lists.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).map_err(|e| {
        Error::invalid(
            dir,
            format!("no model.safetensors, and its index cannot be read: {e}"),
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid(&index, format!("not valid JSON: {e}")))?;
    let mut shards: Vec<String> = json
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| Error::invalid(&index, "no \"weight_map\" object"))?
        .values()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    shards.sort();
    shards.dedup();
    shards
        .into_iter()
        .map(|s| {
            if s.contains('/') || s.contains('\\') || s.starts_with('.') {
                Err(Error::invalid(
                    &index,
                    format!("shard name {s:?} is not a file in this directory"),
                ))
            } else {
                Ok(dir.join(s))
            }
        })
        .collect()
}

fn to_f32(path: &Path, name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    let values: Vec<f32> = match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::invalid(
                path,
                format!("{name} is {other:?}; expected a float tensor"),
            ))
        }
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            path,
            format!("{name} holds a value that is not finite"),
        ));
    }
    Ok(values)
}

/// Reads the heads of the dual encoder checkpoint in `dir`.
pub fn read_heads(dir: impl AsRef<Path>) -> Result<Heads> {
    let dir = dir.as_ref();
    let mut found: BTreeMap<&str, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    for path in weight_files(dir)? {
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::invalid(&path, format!("not a safetensors file: {e}")))?;
        for name in HEAD_WEIGHTS {
            if let Ok(view) = file.tensor(name) {
                found.insert(
                    name,
                    (
                        view.shape().to_vec(),
                        to_f32(&path, name, view.dtype(), view.data())?,
                    ),
                );
            }
        }
    }
    let mut take = |name: &str| {
        found.remove(name).ok_or_else(|| {
            Error::invalid(dir, format!("the weights have no {name}: is this a VisionTextDualEncoderModel checkpoint (vtde compose writes one)?"))
        })
    };
    let matrix = |name: &str, (shape, values): (Vec<usize>, Vec<f32>)| {
        if shape.len() != 2 {
            return Err(Error::invalid(
                dir,
                format!("{name} has shape {shape:?}; expected [projection_dim, hidden_size]"),
            ));
        }
        Array2::from_shape_vec((shape[0], shape[1]), values)
            .map_err(|e| Error::invalid(dir, format!("{name}: {e}")))
    };
    let visual = take(HEAD_WEIGHTS[0])?;
    let text = take(HEAD_WEIGHTS[1])?;
    let (scale_shape, scale) = take(HEAD_WEIGHTS[2])?;
    if scale.len() != 1 {
        return Err(Error::invalid(
            dir,
            format!("logit_scale has shape {scale_shape:?}; expected a scalar"),
        ));
    }
    let heads = Heads {
        visual_projection: matrix(HEAD_WEIGHTS[0], visual)?,
        text_projection: matrix(HEAD_WEIGHTS[1], text)?,
        logit_scale: scale[0],
    };
    heads
        .check()
        .map_err(|e| Error::invalid(dir, e.to_string()))?;
    Ok(heads)
}

/// Writes the checkpoint `src` with `heads` in place of its own into `out` (created; an
/// existing `out` must be empty): every other file copied, all weights in one
/// `model.safetensors`, the heads in float32.
pub fn write_checkpoint_with_heads(
    src: impl AsRef<Path>,
    heads: &Heads,
    out: impl AsRef<Path>,
) -> Result<()> {
    let (src, out) = (src.as_ref(), out.as_ref());
    let original = read_heads(src)?;
    if original.visual_projection.dim() != heads.visual_projection.dim()
        || original.text_projection.dim() != heads.text_projection.dim()
    {
        return Err(Error::Shape(format!(
            "fitted heads {:?} and {:?} do not fit the checkpoint's {:?} and {:?}",
            heads.visual_projection.dim(),
            heads.text_projection.dim(),
            original.visual_projection.dim(),
            original.text_projection.dim()
        )));
    }
    let files = weight_files(src)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut tensors: BTreeMap<String, OutTensor> = BTreeMap::new();
    for path in &files {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::invalid(path, format!("not a safetensors file: {e}")))?;
        for (name, view) in file.tensors() {
            if !HEAD_WEIGHTS.contains(&name.as_str()) {
                tensors.insert(name, OutTensor::copy_of(&view));
            }
        }
    }
    weights_file::insert_heads(&mut tensors, heads);
    let skip: Vec<PathBuf> = files
        .iter()
        .cloned()
        .chain([src.join("model.safetensors.index.json")])
        .collect();
    for entry in std::fs::read_dir(src).map_err(|e| Error::io(src, e))? {
        let path = entry.map_err(|e| Error::io(src, e))?.path();
        if path.is_file() && !skip.contains(&path) {
            if let Some(name) = path.file_name() {
                std::fs::copy(&path, out.join(name)).map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    weights_file::write(&out.join("model.safetensors"), &tensors)
}
