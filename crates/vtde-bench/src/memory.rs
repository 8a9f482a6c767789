//! `vtde bench memory`: resident memory while a package runs many times.
//!
//! Opens the package, then runs the vision, text and projection graphs `--runs` times on
//! the same deterministic random batch, sampling resident memory (`VmRSS`) along the way.
//! It reports:
//! - the peak (`VmHWM`) against the bound of `docs/design.md`: 1.5 × the bytes of the
//!   graphs in use (graph and weights files) plus one batch (the pixel and token tensors
//!   of a run),
//!   counted above the process with ONNX Runtime loaded (its code and start-up
//!   allocations, tens of MiB whatever the package);
//! - the growth per run between the first sample after warm-up and the last one, the
//!   check for the leak reported for ONNX Runtime ≥ 1.24 (about 11 MB per run in some
//!   setups): a leak of even 1 KiB per run shows as ~10 MiB over 10,000 runs.
//!
//! Linux only (it reads /proc/self/status); elsewhere it says so.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vtde_runtime::ndarray::Array4;
use vtde_runtime::{GraphKind, Model, RuntimeOptions};

/// Runs before the baseline sample: ONNX Runtime's arena and caches grow over the first
/// runs, which is not a leak.
pub const WARM_UP_RUNS: usize = 20;

/// What to measure.
#[derive(Debug, Clone)]
pub struct MemoryBenchSettings {
    /// Package directory to measure.
    pub package: PathBuf,
    /// Runs of vision, text and projection graphs (more than [`WARM_UP_RUNS`]).
    pub runs: usize,
    /// Images and texts per run.
    pub batch_size: usize,
    /// Tokens per text.
    pub seq_len: usize,
    /// Resident memory is sampled this many times over the runs.
    pub samples: usize,
    /// How the package is opened and run.
    pub runtime: RuntimeOptions,
}

/// Runs the memory benchmark and prints its report.
pub fn run(args: &MemoryBenchSettings) -> Result<()> {
    if args.runs <= WARM_UP_RUNS {
        bail!("runs must be more than the {WARM_UP_RUNS} warm-up runs");
    }
    if args.batch_size == 0 || args.seq_len == 0 || args.samples == 0 {
        bail!("batch size, text length and samples must be at least 1");
    }
    let rss = || super::proc_status_mib("VmRSS");
    let Some(before_open) = rss() else {
        bail!("vtde bench memory needs /proc/self/status (Linux)");
    };
    let options = &args.runtime;
    // ONNX Runtime's own code and start-up allocations (tens of MiB) do not scale with
    // the package; measured apart, so that the bound is checked on what does.
    vtde_runtime::load_onnxruntime(options.onnxruntime_library.as_deref())
        .context("loading ONNX Runtime")?;
    let with_runtime = rss().unwrap_or(before_open);
    let model = Model::open(&args.package, options)
        .with_context(|| format!("opening package {}", args.package.display()))?;
    let after_open = rss().unwrap_or(f64::NAN);

    let package = model.package();
    let weight_bytes: u64 = GraphKind::ALL
        .iter()
        .flat_map(|&kind| {
            std::iter::once(package.graph_path(kind)).chain(package.weights_path(kind))
        })
        .map(|path| {
            std::fs::metadata(&path)
                .map(|m| m.len())
                .with_context(|| format!("reading the size of {}", path.display()))
        })
        .sum::<Result<u64>>()?;

    let m = model.manifest();
    let (b, s) = (args.batch_size, args.seq_len.min(m.text.max_length));
    let (h, w) = (m.image.height as usize, m.image.width as usize);
    let mut seed = 7u64;
    let pixels = Array4::from_shape_fn((b, 3, h, w), |_| {
        (super::lcg(&mut seed) % 2000) as f32 / 1000.0 - 1.0
    });
    let batch = super::random_text_batch(&model, b, s, &mut seed);
    let batch_bytes = (pixels.len() * 4 + batch.input_ids.len() * 8 * 3) as u64;
    let run_once = || -> Result<()> {
        let image = model
            .image_features(pixels.view())
            .context("vision graph")?;
        let text = model.text_features(&batch).context("text graph")?;
        model
            .project(image.view(), text.view())
            .map(drop)
            .context("projection graph")
    };

    println!(
        "vtde bench memory: {} ({:.1} MiB of graphs), {} runs of vision + text + projection at batch {b}, {s} tokens",
        args.package.display(),
        weight_bytes as f64 / 1048576.0,
        args.runs
    );
    println!(
        "resident before open {before_open:.1} MiB, with ONNX Runtime loaded {with_runtime:.1} MiB, \
         after open {after_open:.1} MiB"
    );
    let started = Instant::now();
    for _ in 0..WARM_UP_RUNS {
        run_once()?;
    }
    let baseline = rss().unwrap_or(f64::NAN);
    println!("{:>8} {:>14} {:>10}", "runs", "resident MiB", "seconds");
    println!(
        "{WARM_UP_RUNS:>8} {baseline:>14.1} {:>10.1}",
        started.elapsed().as_secs_f64()
    );
    let measured = args.runs - WARM_UP_RUNS;
    let every = measured.div_ceil(args.samples).max(1);
    let mut last = baseline;
    for i in 1..=measured {
        run_once()?;
        if i % every == 0 || i == measured {
            last = rss().unwrap_or(f64::NAN);
            println!(
                "{:>8} {last:>14.1} {:>10.1}",
                WARM_UP_RUNS + i,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let peak = super::proc_status_mib("VmHWM").unwrap_or(f64::NAN);
    let bound = (1.5 * weight_bytes as f64 + batch_bytes as f64) / 1048576.0;
    let growth = last - baseline;
    let scaled = peak - with_runtime;
    println!(
        "peak resident {peak:.1} MiB, {scaled:.1} MiB above ONNX Runtime loaded; \
         bound 1.5 × graphs + batch = {bound:.1} MiB: {} ({:.2} × graph bytes)",
        if scaled <= bound {
            "within"
        } else {
            "EXCEEDED"
        },
        scaled * 1048576.0 / weight_bytes as f64
    );
    println!(
        "growth after warm-up: {growth:+.1} MiB over {measured} runs ({:+.2} KiB per run)",
        growth * 1024.0 / measured as f64
    );
    Ok(())
}
