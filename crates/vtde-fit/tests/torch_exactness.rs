//! vtde-fit against PyTorch, step by step: the run recorded by
//! `tools/fit_torch_reference.py` (torch.optim.AdamW, transformers' cosine schedule with
//! warm-up and its contrastive loss, fp32) is replayed with [`vtde_fit::Trainer`] on the
//! same features, initial parameters and batch order. The first 50 steps must match in
//! loss and parameters within 1e-4 relative, and the loss within 1e-3 relative up to
//! step 200. `-- --nocapture` prints the divergence curve.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ndarray::{Array2, ArrayView1};
use vtde_fit::{FitOptions, Heads, NpyFeatures, Trainer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/fit-exactness")
        .join(name)
}

fn matrix(name: &str) -> Array2<f32> {
    NpyFeatures::open(fixture(name))
        .unwrap()
        .read_all()
        .unwrap()
}

fn flatten(heads: &Heads) -> Vec<f32> {
    let mut all: Vec<f32> = heads.visual_projection.iter().copied().collect();
    all.extend(heads.text_projection.iter().copied());
    all.push(heads.logit_scale);
    all
}

/// The largest difference between `ours` and `torch` relative to the size of torch's
/// values in that tensor (max |a − b| / max |b|, per tensor; the worst of the three).
/// Element-wise ratios are meaningless for weights that cross zero.
fn relative_difference(ours: &[f32], torch: ArrayView1<'_, f32>, sizes: [usize; 3]) -> f64 {
    let mut worst = 0f64;
    let mut start = 0;
    for size in sizes {
        let (a, b) = (
            &ours[start..start + size],
            torch.slice(ndarray::s![start..start + size]),
        );
        let scale = b.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
        let diff = a
            .iter()
            .zip(b.iter())
            .fold(0f64, |m, (&x, &y)| m.max(f64::from(x - y).abs()));
        worst = worst.max(diff / scale);
        start += size;
    }
    worst
}

#[test]
fn fit_matches_torch_adamw_step_by_step() {
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("run.json")).unwrap()).unwrap();
    let get = |key: &str| run[key].as_f64().unwrap();
    let (dv, dt, p) = (
        get("vision_dim") as usize,
        get("text_dim") as usize,
        get("projection_dim") as usize,
    );
    let steps = get("steps") as u64;
    let images = matrix("image_features.npy");
    let texts = matrix("text_features.npy");
    let initial = matrix("initial.npy");
    let params = matrix("params.npy");
    let final_params = matrix("final.npy");
    let batches: Vec<Vec<usize>> = serde_json::from_value(run["batches"].clone()).unwrap();
    let losses: Vec<f32> = serde_json::from_value(run["losses"].clone()).unwrap();

    let flat = initial.row(0);
    let heads = Heads {
        visual_projection: Array2::from_shape_vec(
            (p, dv),
            flat.slice(ndarray::s![..p * dv]).to_vec(),
        )
        .unwrap(),
        text_projection: Array2::from_shape_vec(
            (p, dt),
            flat.slice(ndarray::s![p * dv..p * (dv + dt)]).to_vec(),
        )
        .unwrap(),
        logit_scale: flat[p * (dv + dt)],
    };
    let options = FitOptions {
        learning_rate: get("learning_rate"),
        warmup: get("warmup_steps") / steps as f64,
        weight_decay: get("weight_decay"),
        max_logit_scale: get("max_logit_scale") as f32,
        batch_size: get("batch_size") as usize,
        ..FitOptions::default()
    };
    let mut trainer = Trainer::new(heads, &options, steps).unwrap();
    assert_eq!(trainer.warmup_steps(), get("warmup_steps") as u64);
    let sizes = [p * dv, p * dt, 1];
    let recorded = params.nrows();
    let mut curve = Vec::new();
    for (k, batch) in batches.iter().enumerate() {
        let x = images.select(ndarray::Axis(0), batch);
        let y = texts.select(ndarray::Axis(0), batch);
        let report = trainer.step(x.view(), y.view()).unwrap();
        let loss_diff =
            (f64::from(report.loss) - f64::from(losses[k])).abs() / f64::from(losses[k]).abs();
        let param_diff = if k < recorded {
            relative_difference(&flatten(trainer.heads()), params.row(k), sizes)
        } else if k + 1 == batches.len() {
            relative_difference(&flatten(trainer.heads()), final_params.row(0), sizes)
        } else {
            f64::NAN
        };
        curve.push((k + 1, report.loss, losses[k], loss_diff, param_diff));
        if k < recorded {
            assert!(
                loss_diff <= 1e-4,
                "step {}: loss {} vs torch {}",
                k + 1,
                report.loss,
                losses[k]
            );
            assert!(
                param_diff <= 1e-4,
                "step {}: parameters differ by {param_diff:e} relative",
                k + 1
            );
        } else {
            assert!(
                loss_diff <= 1e-3,
                "step {}: loss {} vs torch {}",
                k + 1,
                report.loss,
                losses[k]
            );
        }
    }
    let worst = |range: std::ops::Range<usize>, pick: fn(&(usize, f32, f32, f64, f64)) -> f64| {
        curve[range]
            .iter()
            .map(pick)
            .filter(|v| !v.is_nan())
            .fold(0f64, f64::max)
    };
    println!(
        "worst relative differences: loss steps 1-{recorded} {:.2e}, steps {}-{} {:.2e}; parameters steps 1-{recorded} {:.2e}, step {} {:.2e}",
        worst(0..recorded, |c| c.3),
        recorded + 1,
        curve.len(),
        worst(recorded..curve.len(), |c| c.3),
        worst(0..recorded, |c| c.4),
        curve.len(),
        curve[curve.len() - 1].4
    );
    println!("step  loss(vtde)  loss(torch)  rel.diff(loss)  rel.diff(params)");
    for &(step, ours, torch, dl, dp) in &curve {
        if [1, 2, 5, 10, 20, 30, 40, 50, 75, 100, 150, 200].contains(&step) {
            println!("{step:4}  {ours:10.6}  {torch:11.6}  {dl:14.2e}  {dp:16.2e}");
        }
    }
}
