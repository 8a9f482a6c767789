//! Parity with transformers 5.24: every fixture checkpoint is exported with
//! `vtde-export`, opened with `vtde-runtime`, and each stage is compared with the outputs
//! `tools/make_fixtures.py` recorded from the real transformers model, at the tolerances
//! of `docs/design.md`:
//!
//! | stage | target |
//! |---|---|
//! | token ids, attention masks, token types | identical |
//! | `pixel_values` from PNG | within ±1 level of 255, mean ≤ 0.02 levels |
//! | tower outputs, projections, normalized embeddings | max abs diff ≤ 1e-4, cosine ≥ 0.99999 |
//! | logits, loss | max abs diff ≤ 1e-3 |
//! | image embedding from a file, end to end | cosine ≥ 0.9999 |
//!
//! The graph stages are fed the recorded inputs (not ours), so that each stage is
//! measured on its own. Run with `--nocapture` to see the measured differences.

use ndarray::{s, Array2, Array4, ArrayD, Ix2};
use vtde_runtime::{l2_normalize, read_image, ImageOptions, Model, RuntimeOptions};
use vtde_tests::{
    exported_package, fixture_configs, input_image, max_abs_diff, min_row_cosine, Fixture,
};

const FEATURE_TOL: f32 = 1e-4;
const FEATURE_COSINE: f32 = 0.99999;
const LOGIT_TOL: f32 = 1e-3;
const FILE_EMBED_COSINE: f32 = 0.9999;

fn open(config: &str) -> Model {
    let package = exported_package(config);
    Model::open(&package, &RuntimeOptions::default())
        .unwrap_or_else(|e| panic!("{config}: opening the exported package failed: {e}"))
}

fn as2(a: &ArrayD<f32>) -> Array2<f32> {
    a.clone()
        .into_dimensionality::<Ix2>()
        .expect("2-D recording")
}

fn check_close(config: &str, what: &str, ours: &Array2<f32>, reference: &ArrayD<f32>, tol: f32) {
    let reference = as2(reference);
    let diff = max_abs_diff(&ours.clone().into_dyn(), &reference.clone().into_dyn());
    let cosine = min_row_cosine(ours.view(), reference.view());
    println!("{config:>18} {what:<28} max abs diff {diff:.2e}  min cosine {cosine:.7}");
    assert!(
        diff <= tol,
        "{config}: {what} differs by {diff:e} (tolerance {tol:e})"
    );
    if tol <= FEATURE_TOL {
        assert!(
            cosine >= FEATURE_COSINE,
            "{config}: {what} cosine {cosine} < {FEATURE_COSINE}"
        );
    }
}

fn check_tokens(fx: &Fixture, model: &Model) {
    let ours = model.tokenize(&fx.info.texts).expect("tokenize");
    let reference = fx.text_batch();
    assert_eq!(
        ours.input_ids, reference.input_ids,
        "{}: input_ids differ",
        fx.name
    );
    assert_eq!(
        ours.attention_mask, reference.attention_mask,
        "{}: attention_mask differs",
        fx.name
    );
    if fx.has("token_type_ids") {
        assert_eq!(
            ours.token_type_ids, reference.token_type_ids,
            "{}: token_type_ids differ",
            fx.name
        );
    }
    assert_eq!(model.manifest().text.max_length, fx.info.max_length);
    println!(
        "{:>18} tokens                       identical ({} texts, {} positions)",
        fx.name,
        fx.info.texts.len(),
        ours.input_ids.ncols()
    );
}

/// Our `pixel_values` for the fixture's images, and the largest and mean differences
/// from the recording in levels of 255.
fn check_pixels(fx: &Fixture, model: &Model) {
    let images: Vec<_> = fx
        .info
        .images
        .iter()
        .map(|name| {
            read_image(input_image(name), &ImageOptions::default()).expect("fixture image decodes")
        })
        .collect();
    let ours: Array4<f32> = model.preprocess_images(&images).expect("preprocess");
    let reference = fx.pixel_values();
    assert_eq!(
        ours.shape(),
        reference.shape(),
        "{}: pixel_values shape",
        fx.name
    );
    let image = &model.manifest().image;
    let rescale = image.rescale_factor.unwrap_or(1.0);
    let std = image.normalize.as_ref().map_or([1.0; 3], |n| n.std);
    let (mut max_level, mut sum, mut count) = (0f64, 0f64, 0usize);
    for (((_, c, _, _), a), b) in ours.indexed_iter().zip(reference.iter()) {
        // pixel = (level · rescale − mean) / std, so one level is rescale / std.
        let level = f64::from((a - b).abs() * std[c] / rescale);
        max_level = max_level.max(level);
        sum += level;
        count += 1;
    }
    let mean_level = sum / count as f64;
    println!(
        "{:>18} pixel_values                 max {max_level:.3} levels, mean {mean_level:.4} levels",
        fx.name
    );
    // 1e-3 of a level is float rounding in the normalization, not a pixel difference.
    assert!(
        max_level <= 1.001,
        "{}: pixel_values off by {max_level} levels",
        fx.name
    );
    assert!(
        mean_level <= 0.02,
        "{}: pixel_values mean {mean_level} levels",
        fx.name
    );
}

fn check_graphs(fx: &Fixture, model: &Model) {
    let name = fx.name.as_str();
    let pixels = fx.pixel_values();
    let image_features = model.image_features(pixels.view()).expect("vision graph");
    check_close(
        name,
        "image_features",
        &image_features,
        fx.f32("image_features"),
        FEATURE_TOL,
    );

    let text_features = model.text_features(&fx.text_batch()).expect("text graph");
    check_close(
        name,
        "text_features",
        &text_features,
        fx.f32("text_features"),
        FEATURE_TOL,
    );

    let (image_embeds, text_embeds) = model
        .project(
            as2(fx.f32("image_features")).view(),
            as2(fx.f32("text_features")).view(),
        )
        .expect("projection graph");
    check_close(
        name,
        "image_embeds",
        &image_embeds,
        fx.f32("image_embeds"),
        FEATURE_TOL,
    );
    check_close(
        name,
        "text_embeds",
        &text_embeds,
        fx.f32("text_embeds"),
        FEATURE_TOL,
    );

    let image_norm = l2_normalize(image_embeds.view());
    let text_norm = l2_normalize(text_embeds.view());
    check_close(
        name,
        "image_embeds_normalized",
        &image_norm,
        fx.f32("image_embeds_normalized"),
        FEATURE_TOL,
    );
    check_close(
        name,
        "text_embeds_normalized",
        &text_norm,
        fx.f32("text_embeds_normalized"),
        FEATURE_TOL,
    );

    let scores = model
        .score(image_norm.view(), text_norm.view())
        .expect("scores");
    check_close(
        name,
        "logits_per_image",
        &scores.logits_per_image,
        fx.f32("logits_per_image"),
        LOGIT_TOL,
    );
    check_close(
        name,
        "logits_per_text",
        &scores.logits_per_text,
        fx.f32("logits_per_text"),
        LOGIT_TOL,
    );

    let n = fx.info.loss_n;
    let square = model
        .score(image_norm.slice(s![..n, ..]), text_norm.slice(s![..n, ..]))
        .expect("square scores");
    let loss = square.loss.expect("a square batch has a loss");
    let reference = fx.f32("loss")[[0]];
    let diff = (loss - reference).abs();
    println!(
        "{name:>18} loss                         {loss:.6} vs {reference:.6} (diff {diff:.2e})"
    );
    assert!(diff <= LOGIT_TOL, "{name}: loss {loss} vs {reference}");
}

fn check_end_to_end(fx: &Fixture, model: &Model) {
    let name = fx.name.as_str();
    let texts = model.embed_texts(&fx.info.texts).expect("embed texts");
    check_close(
        name,
        "texts end to end",
        &texts,
        fx.f32("text_embeds_normalized"),
        FEATURE_TOL,
    );

    let images: Vec<_> = fx
        .info
        .images
        .iter()
        .map(|n| read_image(input_image(n), &ImageOptions::default()).expect("decodes"))
        .collect();
    let ours = model.embed_images(&images).expect("embed images");
    let cosine = min_row_cosine(ours.view(), as2(fx.f32("image_embeds_normalized")).view());
    println!("{name:>18} PNG files end to end         min cosine {cosine:.7}");
    assert!(
        cosine >= FILE_EMBED_COSINE,
        "{name}: image files end to end cosine {cosine}"
    );

    if fx.has("jpeg_image_embeds") {
        let jpegs: Vec<_> = fx
            .info
            .jpeg_images
            .iter()
            .map(|n| {
                read_image(
                    vtde_tests::fixtures_dir().join("inputs/jpeg").join(n),
                    &ImageOptions::default(),
                )
                .expect("jpeg")
            })
            .collect();
        let ours = model.embed_images(&jpegs).expect("embed jpeg");
        let cosine = min_row_cosine(ours.view(), as2(fx.f32("jpeg_image_embeds")).view());
        println!("{name:>18} JPEG files end to end        min cosine {cosine:.7}");
        assert!(
            cosine >= FILE_EMBED_COSINE,
            "{name}: JPEG end to end cosine {cosine}"
        );
    }
}

fn parity(config: &str) {
    let fx = Fixture::load(config);
    let model = open(config);
    check_tokens(&fx, &model);
    check_pixels(&fx, &model);
    check_graphs(&fx, &model);
    check_end_to_end(&fx, &model);
}

macro_rules! parity_tests {
    ($($test:ident => $config:literal),* $(,)?) => {
        $( #[test] fn $test() { parity($config); } )*

        /// Every recorded fixture has a parity test above.
        #[test]
        fn every_fixture_has_a_parity_test() {
            let listed = [$($config),*];
            for config in fixture_configs() {
                assert!(listed.contains(&config.as_str()), "fixture {config} has no parity test");
            }
        }
    };
}

parity_tests! {
    vit_bert_tiny => "vit-bert-tiny",
    vit_bert_224 => "vit-bert-224",
    deit_roberta => "deit-roberta",
    beit_xlm_roberta => "beit-xlm-roberta",
    beit_shared_bert => "beit-shared-bert",
    clip_vision_bert => "clip-vision-bert",
    vit_clip_text => "vit-clip-text",
    clip_legacy => "clip-legacy",
    clip_modern => "clip-modern",
    sharded_fp16 => "sharded-fp16",
}
