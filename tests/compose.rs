//! `vtde_fit::compose` against transformers: for every case that `tools/compose_check.py`
//! recorded in `tests/fixtures/compose/` (ViT + BERT; ViTForImageClassification +
//! BertForMaskedLM, whose poolers compose initialises; CLIPVisionModel + RoBERTa;
//! CLIPModel for both towers; BEiT + an XLM-R sentence-transformers folder; the towers
//! of two dual encoders), compose the same sources with the same arguments and check:
//! - the weights are byte for byte the file transformers 5.24 loaded with
//!   `VisionTextDualEncoderModel.from_pretrained` and found no missing, unexpected or
//!   mismatched key in (sha256, recorded with the loading info in `compose.json`);
//! - the package vtde exports from it gives transformers' outputs within the design's
//!   parity tolerances: token ids identical, `pixel_values` within one level, embeddings
//!   within 1e-4, logits within 1e-3.

use ndarray::{Array2, Ix2};
use sha2::{Digest, Sha256};
use vtde_runtime::{read_image, ImageOptions, Model, RuntimeOptions};
use vtde_tests::{fixtures_dir, input_image, max_abs_diff, min_row_cosine, Fixture};

fn compose_case(case: &str) {
    let dir = fixtures_dir().join("compose").join(case);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("compose.json")).expect("compose.json"))
            .expect("JSON");
    let info = &record["transformers_loading_info"];
    for key in [
        "missing_keys",
        "unexpected_keys",
        "mismatched_keys",
        "error_msgs",
    ] {
        assert_eq!(
            info[key].as_array().map(Vec::len),
            Some(0),
            "{case}: transformers reported {key}"
        );
    }
    let args: Vec<String> = serde_json::from_value(record["args"].clone()).expect("args");
    let mut options = vtde_fit::ComposeOptions::default();
    for pair in args.chunks(2) {
        let value = &pair[1];
        match pair[0].as_str() {
            "--projection-dim" => options.projection_dim = value.parse().expect("projection dim"),
            "--seed" => options.seed = value.parse().expect("seed"),
            "--logit-scale" => options.logit_scale = value.parse().expect("logit scale"),
            other => panic!("{case}: unknown compose argument {other}"),
        }
    }
    let source = |key: &str| fixtures_dir().join(record[key].as_str().expect("a source path"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let composed = tmp.path().join("composed");
    vtde_fit::compose(source("vision"), source("text"), &composed, &options)
        .unwrap_or_else(|e| panic!("{case}: compose failed: {e}"));
    let digest = hex::encode(Sha256::digest(
        std::fs::read(composed.join("model.safetensors")).expect("weights"),
    ));
    assert_eq!(
        digest,
        record["model_safetensors_sha256"].as_str().expect("sha256"),
        "{case}: compose wrote other weights than the ones transformers loaded"
    );

    let package = tmp.path().join("package");
    vtde_export::export(&composed, &package, &mut |_| {})
        .unwrap_or_else(|e| panic!("{case}: export failed: {e}"));
    let model = Model::open(&package, &RuntimeOptions::default()).expect("the package opens");
    let fx = Fixture::load(&format!("compose/{case}"));
    check(case, &fx, &model);
}

fn as2(name: &str, fx: &Fixture) -> Array2<f32> {
    fx.f32(name)
        .clone()
        .into_dimensionality::<Ix2>()
        .expect("2-D")
}

fn check(case: &str, fx: &Fixture, model: &Model) {
    let tokens = model.tokenize(&fx.info.texts).expect("tokenize");
    let reference = fx.text_batch();
    assert_eq!(tokens.input_ids, reference.input_ids, "{case}: input_ids");
    assert_eq!(
        tokens.attention_mask, reference.attention_mask,
        "{case}: attention_mask"
    );

    let images: Vec<_> = fx
        .info
        .images
        .iter()
        .map(|n| read_image(input_image(n), &ImageOptions::default()).expect("decodes"))
        .collect();
    let pixels = model.preprocess_images(&images).expect("preprocess");
    let image = &model.manifest().image;
    let rescale = image.rescale_factor.unwrap_or(1.0);
    let std = image.normalize.as_ref().map_or([1.0; 3], |n| n.std);
    let max_level = pixels
        .indexed_iter()
        .zip(fx.pixel_values().iter())
        .map(|(((_, c, _, _), a), b)| (a - b).abs() * std[c] / rescale)
        .fold(0f32, f32::max);
    assert!(
        max_level <= 1.001,
        "{case}: pixel_values off by {max_level} levels"
    );

    let (image_embeds, text_embeds) = fx.embeddings(model);
    let logits = image_embeds.dot(&text_embeds.t()) * model.manifest().logit_scale.exp();
    for (what, ours, reference, tol) in [
        (
            "image_embeds",
            &image_embeds,
            as2("image_embeds_normalized", fx),
            1e-4,
        ),
        (
            "text_embeds",
            &text_embeds,
            as2("text_embeds_normalized", fx),
            1e-4,
        ),
        (
            "logits_per_image",
            &logits,
            as2("logits_per_image", fx),
            1e-3,
        ),
    ] {
        let diff = max_abs_diff(&ours.clone().into_dyn(), &reference.clone().into_dyn());
        println!(
            "{case:>32} {what:<18} max abs diff {diff:.2e}  min cosine {:.7}",
            min_row_cosine(ours.view(), reference.view())
        );
        assert!(
            diff <= tol,
            "{case}: {what} differs by {diff:e} (tolerance {tol:e})"
        );
    }
}

macro_rules! compose_tests {
    ($($test:ident => $case:literal),* $(,)?) => {
        $( #[test] fn $test() { compose_case($case); } )*

        /// Every recorded case has a test above.
        #[test]
        fn every_compose_case_has_a_test() {
            let listed = [$($case),*];
            for entry in std::fs::read_dir(fixtures_dir().join("compose")).expect("tests/fixtures/compose") {
                let name = entry.expect("entry").file_name().into_string().expect("utf-8");
                assert!(listed.contains(&name.as_str()), "compose case {name} has no test");
            }
        }
    };
}

compose_tests! {
    vit_bert => "vit-bert",
    vit_classifier_bert_mlm => "vit-classifier-bert-mlm",
    clip_vision_roberta => "clip-vision-roberta",
    clip_clip => "clip-clip",
    beit_xlmr_sentence_transformers => "beit-xlmr-sentence-transformers",
    dual_encoder_towers => "dual-encoder-towers",
}
