//! Reading `vtde.json`: the format version first, then the strict schema, then the
//! values. Everything the runtime would otherwise have to trust blindly (sizes, file
//! names, input names, constants) is checked here, once, for every reader.

use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::limits::*;
use crate::manifest::{
    ImagePreprocess, Manifest, Resize, ResizeRule, FORMAT_VERSION, TOKENIZER_SHA256_SINCE,
};
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

/// One value of a manifest that the contract refuses: the field (its path in
/// `vtde.json`, e.g. `image.normalize.std`) and what is wrong with it. The message names
/// the field too, so that it reads on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProblem {
    /// The field's path in `vtde.json`.
    pub field: String,
    /// What is wrong, naming the field.
    pub message: String,
}

impl std::fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checks the manifest's values beyond what serde's schema checks: everything the
/// runtime would otherwise have to trust blindly (sizes, file names, input names,
/// constants), within the bounds of [`crate::limits`].
pub fn validate_manifest(path: &Path, m: &Manifest) -> Result<()> {
    check_manifest(m).map_err(|p| Error::InvalidManifest {
        path: path.to_path_buf(),
        message: p.message,
    })
}

/// [`validate_manifest`] without a file: the first problem found, with its field (the
/// exporter maps the field back to the checkpoint file it came from).
pub fn check_manifest(m: &Manifest) -> std::result::Result<(), ManifestProblem> {
    let problem = |field: &str, message: String| {
        Err(ManifestProblem {
            field: field.to_owned(),
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
            return problem(
                field,
                format!("`{field}` must be a relative path inside the package, got {file:?}"),
            );
        }
    }
    for (field, g) in [
        ("vision", &m.graphs.vision),
        ("text", &m.graphs.text),
        ("projection", &m.graphs.projection),
    ] {
        if !is_sha256(&g.sha256) {
            return problem(
                &format!("graphs.{field}.sha256"),
                format!(
                    "`graphs.{field}.sha256` must be 64 hex digits, got {:?}",
                    g.sha256
                ),
            );
        }
        if g.output_dim == 0 || g.output_dim > MAX_FEATURE_DIM {
            return problem(
                &format!("graphs.{field}.output_dim"),
                format!(
                    "`graphs.{field}.output_dim` must be 1 to {MAX_FEATURE_DIM}, got {}",
                    g.output_dim
                ),
            );
        }
        if g.precision != Precision::Fp32 {
            return problem(
                &format!("graphs.{field}.precision"),
                format!("`graphs.{field}.precision` must be fp32 (variants hold the others)"),
            );
        }
        let weights = std::iter::once((g.precision, g.weights.as_ref()))
            .chain(g.variants.iter().map(|v| (v.precision, v.weights.as_ref())));
        for (precision, w) in weights {
            if let Some(w) = w {
                let what = format!("the {precision} weights file of `graphs.{field}`");
                if let Err(message) = check_file_entry(&what, &w.file, &w.sha256) {
                    return problem(&format!("graphs.{field}.weights"), message);
                }
            }
        }
        for v in &g.variants {
            let what = format!("the {} variant of `graphs.{field}`", v.precision);
            if let Err(message) = check_file_entry(&what, &v.file, &v.sha256) {
                return problem(&format!("graphs.{field}.variants"), message);
            }
        }
    }
    if m.projection_dim == 0 || m.projection_dim > MAX_FEATURE_DIM {
        return problem(
            "projection_dim",
            format!(
                "`projection_dim` must be 1 to {MAX_FEATURE_DIM}, got {}",
                m.projection_dim
            ),
        );
    }
    if m.graphs.projection.output_dim != m.projection_dim {
        return problem(
            "graphs.projection.output_dim",
            format!(
                "`graphs.projection.output_dim` ({}) differs from `projection_dim` ({})",
                m.graphs.projection.output_dim, m.projection_dim
            ),
        );
    }
    let scale = m.logit_scale.exp();
    if !m.logit_scale.is_finite() || !(MIN_LOGIT_SCALE_EXP..=MAX_LOGIT_SCALE_EXP).contains(&scale) {
        return problem(
            "logit_scale",
            format!(
                "`logit_scale` is {}: its exponential ({scale}) must be between \
                 {MIN_LOGIT_SCALE_EXP} and {MAX_LOGIT_SCALE_EXP} (CLIP's training clamps it \
                 to 100), else the scores overflow or say nothing",
                m.logit_scale
            ),
        );
    }
    check_image(&m.image)?;
    if let Some(sha256) = &m.tokenizer_sha256 {
        if !is_sha256(sha256) {
            return problem(
                "tokenizer_sha256",
                format!("`tokenizer_sha256` must be 64 hex digits, got {sha256:?}"),
            );
        }
    } else if m.format_version >= TOKENIZER_SHA256_SINCE {
        return problem(
            "tokenizer_sha256",
            format!(
                "`tokenizer_sha256` is missing: format version {} records the tokenizer's \
                 sha256 (from version {TOKENIZER_SHA256_SINCE} on)",
                m.format_version
            ),
        );
    }
    let text = &m.text;
    if text.max_length == 0 || text.max_length > MAX_SEQUENCE_LENGTH {
        return problem(
            "text.max_length",
            format!(
                "`text.max_length` must be 1 to {MAX_SEQUENCE_LENGTH}, got {}",
                text.max_length
            ),
        );
    }
    if text.pad_token_id < 0 {
        return problem(
            "text.pad_token_id",
            format!(
                "`text.pad_token_id` must not be negative, got {}",
                text.pad_token_id
            ),
        );
    }
    let inputs: Vec<&str> = text.inputs.iter().map(String::as_str).collect();
    let two = [names::INPUT_IDS, names::ATTENTION_MASK];
    let three = [
        names::INPUT_IDS,
        names::ATTENTION_MASK,
        names::TOKEN_TYPE_IDS,
    ];
    if inputs != two && inputs != three {
        return problem(
            "text.inputs",
            format!("`text.inputs` must be {two:?} or {three:?}, got {inputs:?}"),
        );
    }
    Ok(())
}

/// The checks of `image`: sizes within [`MAX_IMAGE_SIDE`] and [`MAX_IMAGE_PIXELS`], a
/// preprocessing that ends in `height`×`width`, finite and sensible constants.
fn check_image(img: &ImagePreprocess) -> std::result::Result<(), ManifestProblem> {
    let problem = |field: &str, message: String| {
        Err(ManifestProblem {
            field: field.to_owned(),
            message,
        })
    };
    let size_problem = |h: u32, w: u32| -> Option<String> {
        if h == 0 || w == 0 {
            Some(format!("must be positive, got {h}x{w}"))
        } else if h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE {
            Some(format!(
                "must be at most {MAX_IMAGE_SIDE} pixels a side, got {h}x{w}"
            ))
        } else if u64::from(h) * u64::from(w) > MAX_IMAGE_PIXELS {
            Some(format!(
                "must be at most {MAX_IMAGE_PIXELS} pixels, got {h}x{w}"
            ))
        } else {
            None
        }
    };
    if let Some(why) = size_problem(img.height, img.width) {
        return problem(
            "image.height",
            format!("`image.height`x`image.width` {why}"),
        );
    }
    if let Some(resize) = &img.resize {
        match resize.rule {
            ResizeRule::Exact { height, width } => {
                if let Some(why) = size_problem(height, width) {
                    return problem("image.resize", format!("`image.resize` size {why}"));
                }
            }
            ResizeRule::ShortestEdge { shortest_edge } => {
                if shortest_edge == 0 || shortest_edge > MAX_IMAGE_SIDE {
                    return problem(
                        "image.resize",
                        format!(
                            "`image.resize.shortest_edge` must be 1 to {MAX_IMAGE_SIDE}, got \
                             {shortest_edge}"
                        ),
                    );
                }
            }
        }
    }
    if let Some(crop) = &img.center_crop {
        if let Some(why) = size_problem(crop.height, crop.width) {
            return problem("image.center_crop", format!("`image.center_crop` {why}"));
        }
    }
    let final_size = match (&img.center_crop, &img.resize) {
        (Some(crop), _) => (crop.height, crop.width),
        (
            None,
            Some(Resize {
                rule: ResizeRule::Exact { height, width },
                ..
            }),
        ) => (*height, *width),
        (None, _) => {
            return problem(
                "image.center_crop",
                "`image` has neither a center crop nor an exact resize, so images would keep \
                 their own sizes; the vision graph takes `image.height`x`image.width` only"
                    .into(),
            )
        }
    };
    if final_size != (img.height, img.width) {
        return problem(
            "image.height",
            format!(
                "preprocessing yields {}x{} images but `image.height`x`image.width` is {}x{}",
                final_size.0, final_size.1, img.height, img.width
            ),
        );
    }
    if let Some(f) = img.rescale_factor {
        if !(f.is_finite() && f > 0.0 && f <= MAX_RESCALE_FACTOR) {
            return problem(
                "image.rescale_factor",
                format!(
                    "`image.rescale_factor` must be above 0 and at most {MAX_RESCALE_FACTOR}, \
                     got {f}"
                ),
            );
        }
    }
    if let Some(n) = &img.normalize {
        if !n
            .mean
            .iter()
            .all(|m| m.is_finite() && m.abs() <= MAX_ABS_MEAN)
        {
            return problem(
                "image.normalize.mean",
                format!(
                    "`image.normalize.mean` values must be finite, between -{MAX_ABS_MEAN} and \
                     {MAX_ABS_MEAN}, got {:?}",
                    n.mean
                ),
            );
        }
        if !n
            .std
            .iter()
            .all(|s| s.is_finite() && (MIN_STD..=MAX_STD).contains(s))
        {
            return problem(
                "image.normalize.std",
                format!(
                    "`image.normalize.std` values must be between {MIN_STD} and {MAX_STD}, got \
                     {:?}",
                    n.std
                ),
            );
        }
    }
    Ok(())
}

/// Whether `s` is a sha256 in hex.
fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a file entry of the manifest (`what` names it in the message): a relative path
/// inside the package and a sha256 of 64 hex digits.
fn check_file_entry(what: &str, file: &str, sha256: &str) -> std::result::Result<(), String> {
    if !is_plain_relative(file) {
        return Err(format!(
            "{what} must be a relative path inside the package, got {file:?}"
        ));
    }
    if !is_sha256(sha256) {
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
    use crate::manifest::{Normalize, Size};

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

    /// The demo manifest, parsed.
    fn demo_manifest() -> Manifest {
        check(&demo()).unwrap()
    }

    /// The field `check_manifest` refuses after `edit`, or `None` when it accepts.
    fn refused_field(edit: impl FnOnce(&mut Manifest)) -> Option<String> {
        let mut m = demo_manifest();
        edit(&mut m);
        match check_manifest(&m) {
            Ok(()) => None,
            Err(p) => {
                assert!(
                    p.message
                        .contains(&format!("`{}", p.field.split('.').next().unwrap())),
                    "the message names the field: {p:?}"
                );
                Some(p.field)
            }
        }
    }

    /// A square image size with a matching exact resize and no crop.
    fn square(m: &mut Manifest, side: u32) {
        m.image.height = side;
        m.image.width = side;
        m.image.center_crop = None;
        m.image.resize = Some(Resize {
            rule: ResizeRule::Exact {
                height: side,
                width: side,
            },
            filter: crate::manifest::ResampleFilter::Bilinear,
        });
    }

    #[test]
    fn image_sizes_are_bounded_per_side_and_in_pixels() {
        // The cases: 100000 aborted on allocation, 4294967295 overflowed.
        for side in [0, 100_000, u32::MAX, MAX_IMAGE_SIDE + 1] {
            assert_eq!(
                refused_field(|m| square(m, side)).as_deref(),
                Some("image.height"),
                "{side}"
            );
        }
        // 16384 a side is within the side bound but 2^28 pixels, over the pixel cap.
        assert_eq!(
            refused_field(|m| square(m, MAX_IMAGE_SIDE)).as_deref(),
            Some("image.height")
        );
        // 8192 x 8192 = 2^26 pixels: the largest square allowed.
        assert_eq!(refused_field(|m| square(m, 8192)), None);
        // A long thin image within both bounds.
        assert_eq!(
            refused_field(|m| {
                square(m, 16);
                m.image.width = MAX_IMAGE_SIDE;
                m.image.resize = Some(Resize {
                    rule: ResizeRule::Exact {
                        height: 16,
                        width: MAX_IMAGE_SIDE,
                    },
                    filter: crate::manifest::ResampleFilter::Bilinear,
                });
            }),
            None
        );
    }

    #[test]
    fn resize_and_crop_sizes_are_bounded() {
        let exact = |height, width| Resize {
            rule: ResizeRule::Exact { height, width },
            filter: crate::manifest::ResampleFilter::Bicubic,
        };
        let crop = |m: &mut Manifest| {
            m.image.center_crop = Some(Size {
                height: m.image.height,
                width: m.image.width,
            })
        };
        for (h, w) in [
            (0, 64),
            (64, 0),
            (100_000, 64),
            (u32::MAX, u32::MAX),
            (16_384, 16_384),
        ] {
            assert_eq!(
                refused_field(|m| {
                    crop(m);
                    m.image.resize = Some(exact(h, w));
                })
                .as_deref(),
                Some("image.resize"),
                "{h}x{w}"
            );
        }
        for edge in [0, MAX_IMAGE_SIDE + 1, u32::MAX] {
            assert_eq!(
                refused_field(|m| {
                    crop(m);
                    m.image.resize = Some(Resize {
                        rule: ResizeRule::ShortestEdge {
                            shortest_edge: edge,
                        },
                        filter: crate::manifest::ResampleFilter::Bicubic,
                    });
                })
                .as_deref(),
                Some("image.resize"),
                "{edge}"
            );
        }
        assert_eq!(
            refused_field(|m| {
                m.image.center_crop = Some(Size {
                    height: u32::MAX,
                    width: 64,
                })
            })
            .as_deref(),
            Some("image.center_crop")
        );
    }

    #[test]
    fn preprocessing_must_reach_the_graph_size() {
        // Neither resize nor crop: every image would keep its own size.
        assert_eq!(
            refused_field(|m| {
                m.image.resize = None;
                m.image.center_crop = None;
            })
            .as_deref(),
            Some("image.center_crop")
        );
        // A shortest-edge resize alone keeps the aspect ratio: no fixed size either.
        assert_eq!(
            refused_field(|m| {
                m.image.center_crop = None;
                m.image.resize = Some(Resize {
                    rule: ResizeRule::ShortestEdge { shortest_edge: 64 },
                    filter: crate::manifest::ResampleFilter::Bicubic,
                });
            })
            .as_deref(),
            Some("image.center_crop")
        );
        // A crop alone does reach it (images smaller than the crop are padded).
        assert_eq!(
            refused_field(|m| {
                m.image.resize = None;
                m.image.center_crop = Some(Size {
                    height: 64,
                    width: 64,
                });
            }),
            None
        );
        // A crop of another size than the graph's.
        assert_eq!(
            refused_field(|m| {
                m.image.center_crop = Some(Size {
                    height: 32,
                    width: 32,
                })
            })
            .as_deref(),
            Some("image.height")
        );
    }

    #[test]
    fn logit_scale_must_have_a_sensible_finite_exponential() {
        // The cases: exp overflows f32 (88.8, 100, 1e30), and NaN (which the
        // exporter used to write as `null`).
        for s in [
            88.8f32,
            100.0,
            1e30,
            f32::INFINITY,
            f32::NAN,
            -1e30,
            7.0,
            -7.0,
        ] {
            assert_eq!(
                refused_field(|m| m.logit_scale = s).as_deref(),
                Some("logit_scale"),
                "{s}"
            );
        }
        // CLIP's clamp (ln 100), its initial value (ln(1/0.07)), 0, and the bounds
        // ln(1000) and ln(1/1000) just inside.
        for s in [100f32.ln(), 2.6592, 0.0, 6.9, -6.9] {
            assert_eq!(refused_field(|m| m.logit_scale = s), None, "{s}");
        }
    }

    #[test]
    fn rescale_factor_must_be_in_zero_to_one() {
        for f in [1e38f32, 1.5, 0.0, -1.0 / 255.0, f32::INFINITY, f32::NAN] {
            assert_eq!(
                refused_field(|m| m.image.rescale_factor = Some(f)).as_deref(),
                Some("image.rescale_factor"),
                "{f}"
            );
        }
        for f in [1.0 / 255.0, 1.0 / 127.5, 1.0] {
            assert_eq!(refused_field(|m| m.image.rescale_factor = Some(f)), None);
        }
        assert_eq!(refused_field(|m| m.image.rescale_factor = None), None);
    }

    #[test]
    fn normalization_constants_must_be_finite_and_sensible() {
        let with = |mean: [f32; 3], std: [f32; 3]| {
            move |m: &mut Manifest| m.image.normalize = Some(Normalize { mean, std })
        };
        for mean in [[f32::NAN, 0.5, 0.5], [0.5, 1e30, 0.5], [0.5, 0.5, -256.0]] {
            assert_eq!(
                refused_field(with(mean, [0.5; 3])).as_deref(),
                Some("image.normalize.mean"),
                "{mean:?}"
            );
        }
        for std in [
            [0.0, 0.5, 0.5],
            [0.5, 1e-30, 0.5],
            [0.5, 0.5, -0.5],
            [f32::INFINITY, 0.5, 0.5],
            [0.5, f32::NAN, 0.5],
            [0.5, 0.5, 1000.0],
        ] {
            assert_eq!(
                refused_field(with([0.5; 3], std)).as_deref(),
                Some("image.normalize.std"),
                "{std:?}"
            );
        }
        // CLIP's constants, and ImageNet's in the units of unscaled pixels.
        assert_eq!(
            refused_field(with(
                [0.481_454_66, 0.457_827_5, 0.408_210_73],
                [0.268_629_54, 0.261_302_6, 0.275_777_1]
            )),
            None
        );
        assert_eq!(
            refused_field(with([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])),
            None
        );
    }

    #[test]
    fn dimensions_and_lengths_are_bounded() {
        let big = MAX_FEATURE_DIM + 1;
        assert_eq!(
            refused_field(|m| m.graphs.vision.output_dim = big).as_deref(),
            Some("graphs.vision.output_dim")
        );
        assert_eq!(
            refused_field(|m| m.graphs.text.output_dim = 0).as_deref(),
            Some("graphs.text.output_dim")
        );
        assert_eq!(
            refused_field(|m| {
                m.projection_dim = big;
                m.graphs.projection.output_dim = big;
            })
            .as_deref(),
            Some("graphs.projection.output_dim")
        );
        assert_eq!(
            refused_field(|m| m.projection_dim = 0).as_deref(),
            Some("projection_dim")
        );
        assert_eq!(
            refused_field(|m| m.projection_dim += 1).as_deref(),
            Some("graphs.projection.output_dim")
        );
        for len in [0, MAX_SEQUENCE_LENGTH + 1, usize::MAX] {
            assert_eq!(
                refused_field(|m| m.text.max_length = len).as_deref(),
                Some("text.max_length")
            );
        }
        assert_eq!(
            refused_field(|m| m.text.pad_token_id = -1).as_deref(),
            Some("text.pad_token_id")
        );
    }

    #[test]
    fn the_tokenizer_hash_is_required_from_format_3() {
        assert_eq!(
            refused_field(|m| m.tokenizer_sha256 = None).as_deref(),
            Some("tokenizer_sha256")
        );
        assert_eq!(
            refused_field(|m| m.tokenizer_sha256 = Some("xyz".into())).as_deref(),
            Some("tokenizer_sha256")
        );
        // Format 1 and 2 packages have none and stay valid.
        for version in [1, 2] {
            assert_eq!(
                refused_field(|m| {
                    m.format_version = version;
                    m.tokenizer_sha256 = None;
                }),
                None
            );
        }
        // A version 2 manifest as the exporter of that version wrote it parses.
        let mut v = demo();
        v["format_version"] = serde_json::json!(2);
        v.as_object_mut().unwrap().remove("tokenizer_sha256");
        let m = check(&v).unwrap();
        assert_eq!(m.tokenizer_sha256, None);
    }
}
