//! Reading `vtde.json`: the format version first, then the strict schema, then the
//! values. Everything the runtime would otherwise have to trust blindly (sizes, file
//! names, input names, constants) is checked here, once, for every reader.

use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, ResizeRule, FORMAT_VERSION};
use crate::names;
use crate::precision::Precision;

/// Reads and checks the manifest file at `path` ([`parse_manifest`], then
/// [`validate_manifest`]).
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let manifest = parse_manifest(path, &bytes)?;
    validate_manifest(path, &manifest)?;
    Ok(manifest)
}

/// Parses `vtde.json`: the format version first, then the strict schema.
pub fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<Manifest> {
    let invalid = |message: String| Error::InvalidManifest {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let version = value
        .get("format_version")
        .ok_or_else(|| invalid("missing field `format_version`".into()))?;
    let version = version.as_u64().ok_or_else(|| {
        invalid(format!(
            "`format_version` must be a positive integer, got {version}"
        ))
    })?;
    if version > u64::from(FORMAT_VERSION) {
        return Err(Error::UnsupportedFormatVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(invalid(
            "`format_version` 0 does not exist; versions start at 1".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// Checks the manifest's values beyond what serde's schema checks: everything the
/// runtime would otherwise have to trust blindly (sizes, file names, input names).
pub fn validate_manifest(path: &Path, m: &Manifest) -> Result<()> {
    let invalid = |message: String| {
        Err(Error::InvalidManifest {
            path: path.to_path_buf(),
            message,
        })
    };
    let files = [
        ("graphs.vision.file", &m.graphs.vision.file),
        ("graphs.text.file", &m.graphs.text.file),
        ("graphs.projection.file", &m.graphs.projection.file),
        ("text.tokenizer", &m.text.tokenizer),
    ];
    for (field, file) in files {
        if !is_plain_relative(file) {
            return invalid(format!(
                "`{field}` must be a relative path inside the package, got {file:?}"
            ));
        }
    }
    for (field, g) in [
        ("vision", &m.graphs.vision),
        ("text", &m.graphs.text),
        ("projection", &m.graphs.projection),
    ] {
        if g.sha256.len() != 64 || !g.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return invalid(format!(
                "`graphs.{field}.sha256` must be 64 hex digits, got {:?}",
                g.sha256
            ));
        }
        if g.output_dim == 0 {
            return invalid(format!("`graphs.{field}.output_dim` must be positive"));
        }
        if g.precision != Precision::Fp32 {
            return invalid(format!(
                "`graphs.{field}.precision` must be fp32 (variants hold the others)"
            ));
        }
        let weights = std::iter::once((g.precision, g.weights.as_ref()))
            .chain(g.variants.iter().map(|v| (v.precision, v.weights.as_ref())));
        for (precision, w) in weights {
            if let Some(w) = w {
                let what = format!("the {precision} weights file of `graphs.{field}`");
                check_file_entry(&what, &w.file, &w.sha256).or_else(invalid)?;
            }
        }
        for v in &g.variants {
            let what = format!("the {} variant of `graphs.{field}`", v.precision);
            check_file_entry(&what, &v.file, &v.sha256).or_else(invalid)?;
        }
    }
    if m.graphs.projection.output_dim != m.projection_dim {
        return invalid(format!(
            "`graphs.projection.output_dim` ({}) differs from `projection_dim` ({})",
            m.graphs.projection.output_dim, m.projection_dim
        ));
    }
    if !m.logit_scale.is_finite() {
        return invalid(format!(
            "`logit_scale` must be finite, got {}",
            m.logit_scale
        ));
    }
    let img = &m.image;
    if img.height == 0 || img.width == 0 {
        return invalid(format!(
            "`image.height` and `image.width` must be positive, got {}x{}",
            img.height, img.width
        ));
    }
    if let Some(resize) = &img.resize {
        match resize.rule {
            ResizeRule::Exact { height, width } if height == 0 || width == 0 => {
                return invalid("`image.resize` size must be positive".into());
            }
            ResizeRule::ShortestEdge { shortest_edge: 0 } => {
                return invalid("`image.resize.shortest_edge` must be positive".into());
            }
            _ => {}
        }
    }
    let final_size = match (&img.center_crop, &img.resize) {
        (Some(crop), _) => Some((crop.height, crop.width)),
        (None, Some(r)) => match r.rule {
            ResizeRule::Exact { height, width } => Some((height, width)),
            ResizeRule::ShortestEdge { .. } => None,
        },
        (None, None) => None,
    };
    if let Some((h, w)) = final_size {
        if (h, w) != (img.height, img.width) {
            return invalid(format!(
                "preprocessing yields {h}x{w} images but `image.height`x`image.width` is {}x{}",
                img.height, img.width
            ));
        }
    }
    if let Some(f) = img.rescale_factor {
        if !f.is_finite() {
            return invalid(format!("`image.rescale_factor` must be finite, got {f}"));
        }
    }
    if let Some(n) = &img.normalize {
        if n.mean.iter().chain(&n.std).any(|v| !v.is_finite()) || n.std.contains(&0.0) {
            return invalid(format!(
                "`image.normalize` needs finite mean and non-zero finite std, got {n:?}"
            ));
        }
    }
    let text = &m.text;
    if text.max_length == 0 {
        return invalid("`text.max_length` must be positive".into());
    }
    let inputs: Vec<&str> = text.inputs.iter().map(String::as_str).collect();
    let two = [names::INPUT_IDS, names::ATTENTION_MASK];
    let three = [
        names::INPUT_IDS,
        names::ATTENTION_MASK,
        names::TOKEN_TYPE_IDS,
    ];
    if inputs != two && inputs != three {
        return invalid(format!(
            "`text.inputs` must be {two:?} or {three:?}, got {inputs:?}"
        ));
    }
    Ok(())
}

/// Checks a file entry of the manifest (`what` names it in the message): a relative path
/// inside the package and a sha256 of 64 hex digits.
fn check_file_entry(what: &str, file: &str, sha256: &str) -> std::result::Result<(), String> {
    if !is_plain_relative(file) {
        return Err(format!(
            "{what} must be a relative path inside the package, got {file:?}"
        ));
    }
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{what} needs a sha256 of 64 hex digits, got {sha256:?}"
        ));
    }
    Ok(())
}

/// True for a non-empty relative path made only of normal components (no `..`, no root).
fn is_plain_relative(file: &str) -> bool {
    let p = Path::new(file);
    !file.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo package's manifest, as `vtde export` wrote it.
    const DEMO: &str = include_str!("../../../models/demo/vtde.json");

    fn demo() -> serde_json::Value {
        serde_json::from_str(DEMO).unwrap()
    }

    fn check(value: &serde_json::Value) -> Result<Manifest> {
        let path = Path::new("pkg/vtde.json");
        let m = parse_manifest(path, value.to_string().as_bytes())?;
        validate_manifest(path, &m)?;
        Ok(m)
    }

    fn invalid_message(value: &serde_json::Value) -> String {
        match check(value) {
            Err(Error::InvalidManifest { message, .. }) => message,
            other => panic!("expected InvalidManifest, got {other:?}"),
        }
    }

    #[test]
    fn the_demo_manifest_is_valid() {
        let m = check(&demo()).unwrap();
        assert_eq!(m.format_version, FORMAT_VERSION);
        assert_eq!(m.graphs.projection.output_dim, m.projection_dim);
    }

    #[test]
    fn a_newer_version_is_refused_before_the_schema() {
        let mut v = demo();
        v["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        v["a_field_from_the_future"] = serde_json::json!(1);
        assert!(matches!(
            check(&v),
            Err(Error::UnsupportedFormatVersion { found, .. }) if found == u64::from(FORMAT_VERSION) + 1
        ));
    }

    #[test]
    fn version_zero_and_unknown_fields_are_invalid() {
        let mut v = demo();
        v["format_version"] = serde_json::json!(0);
        assert!(invalid_message(&v).contains("format_version"));
        let mut v = demo();
        v["unknown"] = serde_json::json!(true);
        assert!(invalid_message(&v).contains("unknown"));
    }

    #[test]
    fn values_are_checked() {
        let mut v = demo();
        v["graphs"]["text"]["file"] = serde_json::json!("../text.onnx");
        assert!(invalid_message(&v).contains("graphs.text.file"));

        let mut v = demo();
        v["text"]["inputs"] = serde_json::json!(["input_ids"]);
        assert!(invalid_message(&v).contains("text.inputs"));

        let mut v = demo();
        v["image"]["height"] = serde_json::json!(1);
        assert!(invalid_message(&v).contains("image.height"));

        let mut v = demo();
        v["graphs"]["vision"]["sha256"] = serde_json::json!("abc");
        assert!(invalid_message(&v).contains("graphs.vision.sha256"));
    }
}
