//! `vtde fit CHECKPOINT --pairs PAIRS -o OUT_DIR`: fits a dual encoder's projection heads
//! and `logit_scale` on image–caption pairs with both towers locked (`vtde_fit::fit`).
//!
//! The towers run once: the checkpoint is exported to a package and the package's vision
//! and text graphs compute every pair's tower features (images through the streaming
//! pipeline, captions once each), which are cached as `.npy` files keyed by the
//! checkpoint's files and the pairs (paths, sizes, modification times, captions). A
//! second run on the same towers and pairs, with other settings, starts training at
//! once. Training reads the features a batch at a time from the cache. The fitted
//! checkpoint goes to OUT_DIR, its package to OUT_DIR/package, the settings and the
//! per-epoch results to OUT_DIR/fit_report.json.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use vtde_fit::{
    fit, read_heads, read_pairs, write_checkpoint_with_heads, Evaluation, FitEvent, IndexedRows,
    NpyFeatures, NpyWriter, Pair, PairFeatures,
};
use vtde_runtime::Model;

use crate::args::FitArgs;
use crate::commands::open_model;
use crate::progress::StepBar;
use crate::settings;

/// Captions per text-tower batch.
const TEXT_BATCH: usize = 64;

pub fn run(args: &FitArgs) -> Result<()> {
    let settings = settings::Fit::from_args(args)?;
    let started = Instant::now();
    check_out_dir(&settings.out)?;
    let pairs = read_pairs(&settings.pairs)
        .with_context(|| format!("reading pairs {}", settings.pairs.display()))?;
    let heads = read_heads(&settings.checkpoint)
        .with_context(|| format!("reading the heads of {}", settings.checkpoint.display()))?;

    let checkpoint_key = hash_checkpoint(&settings.checkpoint)?;
    let package = cached_package(&settings.cache, &checkpoint_key, &settings.checkpoint)?;
    let features_key = hash_pairs(&checkpoint_key, &pairs)?;
    let features_dir = settings.cache.join("features").join(&features_key[..16]);
    let cached = features_dir.join("pairs.json").is_file();
    if cached {
        eprintln!(
            "vtde fit: tower features from the cache {}",
            features_dir.display()
        );
    } else {
        let model = open_model(&package, &settings.runtime)?;
        compute_features(&model, &pairs, &features_dir)?;
    }
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(features_dir.join("pairs.json"))
            .context("reading the feature cache index")?,
    )
    .context("reading the feature cache index")?;
    let kept: Vec<usize> =
        serde_json::from_value(index["kept"].clone()).context("feature cache index: kept")?;
    let caption_rows: Vec<usize> = serde_json::from_value(index["caption_rows"].clone())
        .context("feature cache index: caption_rows")?;
    let mut images = NpyFeatures::open(features_dir.join("images.npy"))?;
    let texts = NpyFeatures::open(features_dir.join("texts.npy"))?;
    let mut texts = IndexedRows::new(texts, caption_rows.clone())?;

    let options = &settings.options;
    let mut bar = StepBar::new(0, "steps");
    let mut smoothed: Option<f32> = None;
    let mut epoch_lines = Vec::new();
    let data = PairFeatures {
        images: &mut images,
        texts: &mut texts,
        caption_ids: &caption_rows,
    };
    let training_started = Instant::now();
    let report = fit(heads, data, options, |event| {
        match event {
            FitEvent::Start {
                total_steps,
                train_pairs,
                validation_pairs,
            } => {
                eprintln!(
                    "vtde fit: {train_pairs} pairs to train on, {validation_pairs} held out; {} epochs of batch {}, {total_steps} steps",
                    options.epochs, options.batch_size
                );
                bar = StepBar::new(total_steps, "steps");
            }
            FitEvent::Step { report, .. } => {
                let loss = smoothed.map_or(report.loss, |s| 0.9 * s + 0.1 * report.loss);
                smoothed = Some(loss);
                bar.advance(1, || format!("loss {loss:.4}"));
            }
            FitEvent::Epoch(summary) => {
                let line = format!(
                    "vtde fit: epoch {}/{}: train loss {:.4}{}",
                    summary.epoch,
                    options.epochs,
                    summary.train_loss,
                    summary
                        .validation
                        .as_ref()
                        .map(describe)
                        .unwrap_or_default()
                );
                bar.note(&line);
                epoch_lines.push(line);
            }
        }
        Ok(())
    })?;
    bar.finish();
    let training_secs = training_started.elapsed().as_secs_f64();

    write_checkpoint_with_heads(&settings.checkpoint, &report.heads, &settings.out).with_context(
        || {
            format!(
                "writing the fitted checkpoint to {}",
                settings.out.display()
            )
        },
    )?;
    let package_dir = settings.out.join("package");
    vtde_export::export(&settings.out, &package_dir, &mut |_| {}).with_context(|| {
        format!(
            "exporting the fitted checkpoint to {}",
            package_dir.display()
        )
    })?;
    let evaluation = |e: &Option<Evaluation>| e.as_ref().map(evaluation_json);
    let fit_report = json!({
        "checkpoint": settings.checkpoint.display().to_string(),
        "pairs": settings.pairs.display().to_string(),
        "pairs_read": pairs.len(),
        "pairs_used": kept.len(),
        "train_pairs": report.train_pairs,
        "validation_pairs": report.validation_pairs,
        "settings": {
            "epochs": options.epochs,
            "batch_size": options.batch_size,
            "learning_rate": options.learning_rate,
            "warmup": options.warmup,
            "weight_decay": options.weight_decay,
            "validation": options.validation,
            "seed": options.seed,
            "max_logit_scale": options.max_logit_scale,
        },
        "initial_validation": evaluation(&report.initial_validation),
        "epochs": report.epochs.iter().map(|e| json!({
            "epoch": e.epoch,
            "train_loss": e.train_loss,
            "validation": evaluation(&e.validation),
        })).collect::<Vec<_>>(),
        "logit_scale": report.heads.logit_scale,
        "training_seconds": training_secs,
    });
    let report_path = settings.out.join("fit_report.json");
    std::fs::write(&report_path, format!("{fit_report:#}\n"))
        .with_context(|| format!("writing {}", report_path.display()))?;
    eprintln!(
        "vtde fit: wrote {} (checkpoint, fit_report.json) and {} in {:.1}s ({:.1}s training); logit_scale {:.4}",
        settings.out.display(),
        package_dir.display(),
        started.elapsed().as_secs_f64(),
        training_secs,
        report.heads.logit_scale
    );
    Ok(())
}

/// One epoch's held-out results, as a line's tail.
fn describe(e: &Evaluation) -> String {
    let mut line = format!(
        "; held-out {}: image→text R@1 {:.3} R@5 {:.3}, text→image R@1 {:.3} R@5 {:.3}",
        e.pairs, e.image_to_text[0], e.image_to_text[1], e.text_to_image[0], e.text_to_image[1]
    );
    if let (Some(acc), Some(labels)) = (e.zero_shot, e.labels) {
        line.push_str(&format!(", zero-shot {acc:.3} ({labels} labels)"));
    }
    line
}

fn evaluation_json(e: &Evaluation) -> serde_json::Value {
    json!({
        "pairs": e.pairs,
        "image_to_text_recall_at_1": e.image_to_text[0],
        "image_to_text_recall_at_5": e.image_to_text[1],
        "text_to_image_recall_at_1": e.text_to_image[0],
        "text_to_image_recall_at_5": e.text_to_image[1],
        "zero_shot_accuracy": e.zero_shot,
        "zero_shot_labels": e.labels,
    })
}

/// OUT_DIR must be absent or empty: the fitted checkpoint is a new directory.
fn check_out_dir(out: &Path) -> Result<()> {
    if out.exists() {
        let mut entries =
            std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} exists and is not empty: vtde fit writes a new checkpoint directory",
                out.display()
            );
        }
    }
    Ok(())
}

/// sha256 over the checkpoint directory's regular files (names and contents, in name
/// order): the exported package and the tower features depend on nothing else.
fn hash_checkpoint(dir: &Path) -> Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for path in files {
        hasher.update(
            path.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        hasher.update([0]);
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        loop {
            let n = file
                .read(&mut buffer)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The key of the pairs' features: the checkpoint, and each pair's image (path, size,
/// modification time) and caption.
fn hash_pairs(checkpoint_key: &str, pairs: &[Pair]) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(checkpoint_key.as_bytes());
    for pair in pairs {
        let absolute = std::path::absolute(&pair.image).unwrap_or_else(|_| pair.image.clone());
        hasher.update(absolute.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        if let Ok(meta) = std::fs::metadata(&pair.image) {
            hasher.update(meta.len().to_le_bytes());
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            hasher.update(modified.to_le_bytes());
        }
        hasher.update(pair.caption.as_bytes());
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The checkpoint's package in the cache, exported on first use.
fn cached_package(cache: &Path, key: &str, checkpoint: &Path) -> Result<PathBuf> {
    let dir = cache.join("packages").join(&key[..16]);
    if dir.join("vtde.json").is_file() {
        return Ok(dir);
    }
    let partial =
        cache
            .join("packages")
            .join(format!("{}.partial-{}", &key[..16], std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    std::fs::create_dir_all(cache.join("packages"))
        .with_context(|| format!("creating {}", cache.display()))?;
    eprintln!(
        "vtde fit: exporting {} to compute tower features",
        checkpoint.display()
    );
    vtde_export::export(checkpoint, &partial, &mut |_| {})
        .with_context(|| format!("exporting {}", checkpoint.display()))?;
    std::fs::rename(&partial, &dir)
        .with_context(|| format!("moving the package to {}", dir.display()))?;
    Ok(dir)
}

/// Computes the tower features of `pairs` into `dir`: `images.npy` (one row per pair
/// whose image could be read, in pair order), `texts.npy` (one row per distinct
/// caption) and `pairs.json` (the pairs kept, each one's caption row, the failures),
/// written last; the directory appears complete or not at all.
fn compute_features(model: &Model, pairs: &[Pair], dir: &Path) -> Result<()> {
    let parent = dir
        .parent()
        .context("the feature cache directory has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let partial = parent.join(format!(
        "{}.partial-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;

    let m = model.manifest();
    // Distinct captions, in order of first appearance.
    let mut captions: Vec<&str> = Vec::new();
    let mut row_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let caption_row: Vec<usize> = pairs
        .iter()
        .map(|p| {
            *row_of.entry(p.caption.as_str()).or_insert_with(|| {
                captions.push(p.caption.as_str());
                captions.len() - 1
            })
        })
        .collect();
    let started = Instant::now();
    let bar = StepBar::new((captions.len() + pairs.len()) as u64, "captions + images");
    let mut texts = NpyWriter::create(partial.join("texts.npy"), m.graphs.text.output_dim)?;
    for chunk in captions.chunks(TEXT_BATCH) {
        let batch = model.tokenize(chunk).context("tokenizing captions")?;
        let features = model
            .text_features(&batch)
            .context("running the text tower")?;
        texts.append(features.view())?;
        bar.advance(chunk.len() as u64, || "captions".into());
    }
    texts.finish()?;

    let mut images = NpyWriter::create(partial.join("images.npy"), m.graphs.vision.output_dim)?;
    let paths: Vec<&Path> = pairs.iter().map(|p| p.image.as_path()).collect();
    let mut kept = Vec::with_capacity(pairs.len());
    let mut failed = Vec::new();
    model.stream_image_files(&paths, |batch| -> Result<()> {
        let features = model
            .image_features(batch.pixel_values())
            .context("running the vision tower")?;
        images.append(features.view())?;
        kept.extend(batch.items.iter().copied());
        for (input, error) in &batch.failures {
            let pair = &pairs[*input];
            bar.note(&format!(
                "vtde fit: skipping {} ({}): {error}",
                pair.origin,
                pair.image.display()
            ));
            failed.push(json!({"pair": input, "origin": pair.origin, "error": error.to_string()}));
        }
        bar.advance((batch.items.len() + batch.failures.len()) as u64, || {
            "images".into()
        });
        Ok(())
    })?;
    images.finish()?;
    bar.finish();
    if kept.len() < 2 {
        bail!(
            "only {} of {} images could be read: nothing to fit on",
            kept.len(),
            pairs.len()
        );
    }
    let kept_rows: Vec<usize> = kept.iter().map(|&i| caption_row[i]).collect();
    let index = json!({
        "pairs": pairs.len(),
        "kept": kept,
        "caption_rows": kept_rows,
        "captions": captions,
        "failed": failed,
    });
    std::fs::write(partial.join("pairs.json"), format!("{index}\n"))
        .with_context(|| format!("writing {}", partial.display()))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::rename(&partial, dir)
        .with_context(|| format!("moving features to {}", dir.display()))?;
    eprintln!(
        "vtde fit: tower features of {} images and {} distinct captions in {:.1}s ({} images failed), cached in {}",
        kept.len(),
        captions.len(),
        started.elapsed().as_secs_f64(),
        failed.len(),
        dir.display()
    );
    Ok(())
}
