//! `vtde bench model`: throughput of a package's graphs, next to the Python baselines.
//!
//! For each precision asked for, the package is opened (timed: sessions ready), then the
//! vision graph runs at each batch size and the text graph at 32 texts of each length, on
//! deterministic random inputs; each measurement is the median of `--repeats` timed runs
//! after one warm-up run. With `--checkpoint` and `--python`, `tools/bench_model.py` then
//! measures torch eager and onnxruntime on a `torch.onnx.export` of the same checkpoint
//! with the same thread count, and the table shows vtde's ratio to each. Peak resident
//! memory of this process is reported at the end (Linux).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vtde_runtime::ndarray::{Array2, Array4};
use vtde_runtime::{Model, TextBatch};

use crate::args::BenchModelArgs;

/// Texts per text-graph run (DESIGN.md's baselines use 32).
const TEXT_BATCH: usize = 32;

/// Throughputs, items per second, by shape.
#[derive(Debug, Default, Clone)]
struct Rates {
    vision: Vec<(usize, f64)>,
    text: Vec<(usize, f64)>,
}

pub fn run(args: &BenchModelArgs) -> Result<()> {
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    let threads = args
        .runtime
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut rows: Vec<(String, Rates)> = Vec::new();
    for &precision in &args.precisions {
        let runtime = crate::args::RuntimeArgs {
            onnxruntime: args.runtime.onnxruntime.clone(),
            threads: Some(threads),
            precision,
        };
        let started = Instant::now();
        let model = crate::commands::open_model(&args.package, &runtime)?;
        eprintln!(
            "vtde bench: {precision} package open (sessions ready) in {:.3}s",
            started.elapsed().as_secs_f64()
        );
        let rates = measure(&model, args)?;
        rows.push((format!("vtde {precision}"), rates));
    }

    let baselines = match (&args.checkpoint, &args.python) {
        (Some(checkpoint), Some(python)) => python_baselines(checkpoint, python, args, threads)?,
        _ => {
            eprintln!("vtde bench: Python baselines skipped (give --checkpoint and --python)");
            Vec::new()
        }
    };
    print_table(&rows, &baselines, threads);
    if let Some(peak) = peak_rss_mib() {
        println!("\npeak resident memory of vtde (this process): {peak:.0} MiB");
    }
    Ok(())
}

/// A deterministic pseudo-random sequence (no RNG dependency needed for benchmark data).
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

fn median_rate(items: usize, repeats: usize, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
    run()?; // warm-up
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(items as f64 / times[times.len() / 2])
}

fn measure(model: &Model, args: &BenchModelArgs) -> Result<Rates> {
    let m = model.manifest();
    let (h, w) = (m.image.height as usize, m.image.width as usize);
    let mut seed = 1u64;
    let mut rates = Rates::default();
    for &b in &args.batch_sizes {
        let pixels = Array4::from_shape_fn((b, 3, h, w), |_| {
            (lcg(&mut seed) % 2000) as f32 / 1000.0 - 1.0
        });
        let rate = median_rate(b, args.repeats, || {
            model
                .image_features(pixels.view())
                .map(drop)
                .context("vision graph")
        })?;
        eprintln!("vtde bench: vision batch {b}: {rate:.1} images/s");
        rates.vision.push((b, rate));
    }
    let vocab = model.tokenizer().inner().get_vocab_size(true).max(4) as u64;
    for &s in &args.seq_lens {
        if s > m.text.max_length {
            eprintln!(
                "vtde bench: skipping {s} tokens: the text tower takes at most {}",
                m.text.max_length
            );
            continue;
        }
        let ids = Array2::from_shape_fn((TEXT_BATCH, s), |_| {
            (3 + lcg(&mut seed) % (vocab.min(30000) - 3)) as i64
        });
        let batch = TextBatch {
            attention_mask: Array2::ones(ids.raw_dim()),
            token_type_ids: Array2::zeros(ids.raw_dim()),
            input_ids: ids,
        };
        let rate = median_rate(TEXT_BATCH, args.repeats, || {
            model.text_features(&batch).map(drop).context("text graph")
        })?;
        eprintln!("vtde bench: text {TEXT_BATCH}×{s}: {rate:.1} texts/s");
        rates.text.push((s, rate));
    }
    Ok(rates)
}

fn python_baselines(
    checkpoint: &Path,
    python: &Path,
    args: &BenchModelArgs,
    threads: usize,
) -> Result<Vec<(String, Rates)>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/bench_model.py");
    let out = tempfile_path("vtde-bench-model.json");
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    eprintln!(
        "vtde bench: running the Python baselines ({})",
        script.display()
    );
    let mut command = std::process::Command::new(python);
    command
        .arg(&script)
        .arg("--checkpoint")
        .arg(checkpoint)
        .args(["--batch-sizes", &join(&args.batch_sizes)])
        .args(["--seq-lens", &join(&args.seq_lens)])
        .args(["--repeats", &args.repeats.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--text-batch", &TEXT_BATCH.to_string()]);
    let json = super::run_json_script(command, python, &script, &out)?;
    let rates = |engine: &str| Rates {
        vision: args
            .batch_sizes
            .iter()
            .filter_map(|b| Some((*b, json[engine]["vision"][b.to_string()].as_f64()?)))
            .collect(),
        text: args
            .seq_lens
            .iter()
            .filter_map(|s| Some((*s, json[engine]["text"][s.to_string()].as_f64()?)))
            .collect(),
    };
    Ok(vec![
        ("torch eager".to_owned(), rates("torch")),
        (
            "onnxruntime (torch export)".to_owned(),
            rates("onnxruntime"),
        ),
    ])
}

fn tempfile_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}

fn print_table(rows: &[(String, Rates)], baselines: &[(String, Rates)], threads: usize) {
    println!("throughput, items/s (median), {threads} intra-op threads; ratio = vtde / baseline");
    let mut shapes: Vec<String> = Vec::new();
    if let Some((_, r)) = rows.first() {
        shapes.extend(r.vision.iter().map(|(b, _)| format!("vision b{b}")));
        shapes.extend(r.text.iter().map(|(s, _)| format!("text {TEXT_BATCH}x{s}")));
    }
    let all: Vec<&(String, Rates)> = rows.iter().chain(baselines.iter()).collect();
    let flat = |r: &Rates| -> Vec<f64> {
        r.vision
            .iter()
            .chain(r.text.iter())
            .map(|(_, v)| *v)
            .collect()
    };
    print!("{:<14}", "shape");
    for (name, _) in &all {
        print!(" {name:>26}");
    }
    for (name, _) in rows {
        for (base, _) in baselines {
            print!(
                " {:>26}",
                format!("{name}/{}", base.split(' ').next().unwrap_or(base))
            );
        }
    }
    println!();
    for (i, shape) in shapes.iter().enumerate() {
        print!("{shape:<14}");
        for (_, r) in &all {
            match flat(r).get(i) {
                Some(v) => print!(" {v:>26.1}"),
                None => print!(" {:>26}", "-"),
            }
        }
        for (_, r) in rows {
            for (_, b) in baselines {
                match (flat(r).get(i), flat(b).get(i)) {
                    (Some(v), Some(base)) if *base > 0.0 => print!(" {:>25.2}x", v / base),
                    _ => print!(" {:>26}", "-"),
                }
            }
        }
        println!();
    }
}

/// Peak resident set size of this process in MiB (`VmHWM`), where /proc has it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
