//! Test support: a tiny but complete model package built in a temporary directory, and
//! access to the ONNX Runtime library.
//!
//! The package's graphs are small enough to check by hand:
//! - vision: `image_features = mean_hw(pixel_values) @ WV` (`[n, 3] @ [3, 6]`);
//! - text: `text_features = [Σ ids·mask, Σ mask] @ WT` (`[m, 2] @ [2, 5]`), plus
//!   `Σ token_type_ids` in a third column when the graph takes them;
//! - projection: `image_embeds = image_features @ PV`, `text_embeds = text_features @ PT`.

#![allow(dead_code)]
// Test support: a failure here is the test's failure.
#![allow(clippy::unwrap_used)]

pub mod onnx;

use std::path::Path;

use onnx::{Attr, Dim, FLOAT, INT64};
use sha2::{Digest, Sha256};
use vtde_runtime::manifest::*;
use vtde_runtime::Precision;

pub const DV: usize = 6;
pub const DT: usize = 5;
pub const P: usize = 4;
pub const SIDE: u32 = 4;

pub fn wv() -> Vec<f32> {
    (0..3 * DV).map(|i| (i as f32 - 7.0) / 10.0).collect()
}
pub fn wt(rows: usize) -> Vec<f32> {
    (0..rows * DT)
        .map(|i| ((i % 7) as f32 - 3.0) / 4.0 + 0.01 * i as f32)
        .collect()
}
pub fn pv() -> Vec<f32> {
    (0..DV * P)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 6.0)
        .collect()
}
pub fn pt() -> Vec<f32> {
    (0..DT * P)
        .map(|i| ((i * 3 % 7) as f32 - 3.0) / 5.0)
        .collect()
}

pub fn vision_onnx() -> Vec<u8> {
    onnx::model(
        vec![
            onnx::node(
                "ReduceMean",
                &["pixel_values"],
                &["mean"],
                vec![Attr::Ints("axes", vec![2, 3]), Attr::Int("keepdims", 0)],
            ),
            onnx::node("MatMul", &["mean", "WV"], &["image_features"], vec![]),
        ],
        vec![onnx::float_tensor("WV", &[3, DV as i64], &wv())],
        vec![onnx::value_info(
            "pixel_values",
            FLOAT,
            &[
                Dim::Sym("batch"),
                Dim::Fixed(3),
                Dim::Fixed(SIDE as i64),
                Dim::Fixed(SIDE as i64),
            ],
        )],
        vec![onnx::value_info(
            "image_features",
            FLOAT,
            &[Dim::Sym("batch"), Dim::Fixed(DV as i64)],
        )],
    )
}

pub fn text_onnx(with_types: bool) -> Vec<u8> {
    let cols = if with_types { 3 } else { 2 };
    let mut nodes = vec![
        onnx::node(
            "Cast",
            &["input_ids"],
            &["ids_f"],
            vec![Attr::Int("to", FLOAT)],
        ),
        onnx::node(
            "Cast",
            &["attention_mask"],
            &["mask_f"],
            vec![Attr::Int("to", FLOAT)],
        ),
        onnx::node("Mul", &["ids_f", "mask_f"], &["masked"], vec![]),
        onnx::node(
            "ReduceSum",
            &["masked", "axis1"],
            &["s_ids"],
            vec![Attr::Int("keepdims", 1)],
        ),
        onnx::node(
            "ReduceSum",
            &["mask_f", "axis1"],
            &["s_mask"],
            vec![Attr::Int("keepdims", 1)],
        ),
    ];
    let mut concat_inputs = vec!["s_ids", "s_mask"];
    let mut inputs = vec![
        onnx::value_info("input_ids", INT64, &[Dim::Sym("batch"), Dim::Sym("seq")]),
        onnx::value_info(
            "attention_mask",
            INT64,
            &[Dim::Sym("batch"), Dim::Sym("seq")],
        ),
    ];
    if with_types {
        nodes.push(onnx::node(
            "Cast",
            &["token_type_ids"],
            &["types_f"],
            vec![Attr::Int("to", FLOAT)],
        ));
        nodes.push(onnx::node(
            "ReduceSum",
            &["types_f", "axis1"],
            &["s_types"],
            vec![Attr::Int("keepdims", 1)],
        ));
        concat_inputs.push("s_types");
        inputs.push(onnx::value_info(
            "token_type_ids",
            INT64,
            &[Dim::Sym("batch"), Dim::Sym("seq")],
        ));
    }
    nodes.push(onnx::node(
        "Concat",
        &concat_inputs,
        &["stats"],
        vec![Attr::Int("axis", 1)],
    ));
    nodes.push(onnx::node(
        "MatMul",
        &["stats", "WT"],
        &["text_features"],
        vec![],
    ));
    onnx::model(
        nodes,
        vec![
            onnx::int_tensor("axis1", &[1], &[1]),
            onnx::float_tensor("WT", &[cols, DT as i64], &wt(cols as usize)),
        ],
        inputs,
        vec![onnx::value_info(
            "text_features",
            FLOAT,
            &[Dim::Sym("batch"), Dim::Fixed(DT as i64)],
        )],
    )
}

pub fn projection_onnx() -> Vec<u8> {
    onnx::model(
        vec![
            onnx::node(
                "MatMul",
                &["image_features", "PV"],
                &["image_embeds"],
                vec![],
            ),
            onnx::node("MatMul", &["text_features", "PT"], &["text_embeds"], vec![]),
        ],
        vec![
            onnx::float_tensor("PV", &[DV as i64, P as i64], &pv()),
            onnx::float_tensor("PT", &[DT as i64, P as i64], &pt()),
        ],
        vec![
            onnx::value_info(
                "image_features",
                FLOAT,
                &[Dim::Sym("n"), Dim::Fixed(DV as i64)],
            ),
            onnx::value_info(
                "text_features",
                FLOAT,
                &[Dim::Sym("m"), Dim::Fixed(DT as i64)],
            ),
        ],
        vec![
            onnx::value_info(
                "image_embeds",
                FLOAT,
                &[Dim::Sym("n"), Dim::Fixed(P as i64)],
            ),
            onnx::value_info("text_embeds", FLOAT, &[Dim::Sym("m"), Dim::Fixed(P as i64)]),
        ],
    )
}

/// The word-level tokenizer of the unit tests: `[CLS] words [SEP]`, ids 2 and 3.
pub const TOKENIZER_JSON: &str = r#"{
  "version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [
    {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
  "decoder": null,
  "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3,
            "a": 4, "photo": 5, "of": 6, "cat": 7, "dog": 8}, "unk_token": "[UNK]"}
}"#;

pub fn manifest(with_types: bool) -> Manifest {
    let graph = |file: &str, bytes: &[u8], dim| GraphFile {
        file: file.into(),
        opset: 17,
        precision: Precision::Fp32,
        sha256: hex(bytes),
        // Weights inside the graph file, as format version 1 packages have them.
        weights: None,
        output_dim: dim,
        variants: Vec::new(),
    };
    let mut inputs = vec!["input_ids".to_string(), "attention_mask".to_string()];
    if with_types {
        inputs.push("token_type_ids".into());
    }
    Manifest {
        format_version: FORMAT_VERSION,
        source: Source {
            architecture: "VisionTextDualEncoderModel".into(),
            vision_model_type: "vit".into(),
            text_model_type: "bert".into(),
        },
        projection_dim: P,
        logit_scale: 2.6592,
        image: ImagePreprocess {
            height: SIDE,
            width: SIDE,
            convert_rgb: true,
            resize: Some(Resize {
                rule: ResizeRule::ShortestEdge {
                    shortest_edge: SIDE,
                },
                filter: ResampleFilter::Bicubic,
            }),
            center_crop: Some(Size {
                height: SIDE,
                width: SIDE,
            }),
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some(Normalize {
                mean: [0.5, 0.5, 0.5],
                std: [0.5, 0.5, 0.5],
            }),
        },
        text: TextPreprocess {
            tokenizer: "tokenizer.json".into(),
            max_length: 8,
            pad_token_id: 0,
            inputs,
        },
        tokenizer_sha256: Some(hex(TOKENIZER_JSON.as_bytes())),
        graphs: Graphs {
            vision: graph("vision.onnx", &vision_onnx(), DV),
            text: graph("text.onnx", &text_onnx(with_types), DT),
            projection: graph("projection.onnx", &projection_onnx(), P),
        },
        producer: Producer {
            name: "vtde-runtime-tests".into(),
            version: "0".into(),
        },
    }
}

pub fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the tiny package into `dir`.
pub fn write_package(dir: &Path, with_types: bool) {
    std::fs::write(dir.join("vision.onnx"), vision_onnx()).unwrap();
    std::fs::write(dir.join("text.onnx"), text_onnx(with_types)).unwrap();
    std::fs::write(dir.join("projection.onnx"), projection_onnx()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), TOKENIZER_JSON).unwrap();
    write_manifest(dir, &manifest(with_types));
}

pub fn write_manifest(dir: &Path, m: &Manifest) {
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(m).unwrap(),
    )
    .unwrap();
}

/// True when ONNX Runtime can be loaded. Tests that need it return early otherwise, with
/// a note on stderr, unless `VTDE_REQUIRE_ORT` is set (then they fail).
pub fn ort_available() -> bool {
    match vtde_runtime::load_onnxruntime(None) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var_os("VTDE_REQUIRE_ORT").is_some() {
                panic!("VTDE_REQUIRE_ORT is set but ONNX Runtime is unavailable: {e}");
            }
            eprintln!("SKIPPED (no ONNX Runtime): {e}");
            false
        }
    }
}
