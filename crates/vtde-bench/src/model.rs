//! `vtde bench model`: throughput of a package's graphs, next to the Python baselines.
//!
//! For each precision asked for, the package is opened `--open-repeats` times (timed:
//! manifest read, checksums verified, tokenizer and sessions ready; the first open is
//! reported apart, as it may fill the checksum cache). Then, on deterministic random
//! inputs, each *shape* is measured: the vision graph at each batch size, the text graph
//! at 32 texts of each length, the projection head at each batch size (that many image
//! and text feature rows), and a *query*: one image and one short text through all three
//! graphs in turn, as an interactive app asks (no baseline runs it).
//!
//! With `--checkpoint` and `--python`, `tools/bench_model.py --serve` runs beside vtde
//! and measures the same shapes in torch eager and in onnxruntime on a
//! `torch.onnx.export` of the same checkpoint, with the same thread count. vtde also
//! runs those torch-exported graphs in its own runtime ("torch graphs in vtde"): that
//! column differs from vtde's only by the graphs, the cleanest test of graph speed. The
//! measurements are *interleaved*: in each of `--rounds` rounds, every shape is measured
//! by every engine one after the other, each the median of `--repeats` timed runs after
//! a warm-up run (a run shorter than 50 ms is repeated within each timed sample). This machine type is shared and its speed drifts by tens of percent
//! over minutes, so only ratios of neighbouring measurements mean something: the table
//! shows each engine's median over rounds, and each ratio is the median of the per-round
//! ratios. Peak resident memory of this process is reported at the end (Linux).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vtde_runtime::ndarray::{Array2, Array4};
use vtde_runtime::{Model, PackageOptions, Precision, RuntimeOptions, TextBatch};

/// What to measure.
#[derive(Debug, Clone)]
pub struct ModelBenchSettings {
    /// Package directory to measure.
    pub package: PathBuf,
    /// The checkpoint the package was exported from: the Python baselines run on it
    /// (with `python`).
    pub checkpoint: Option<PathBuf>,
    /// Python of the reference environment, for the baselines.
    pub python: Option<PathBuf>,
    /// Image batch sizes.
    pub batch_sizes: Vec<usize>,
    /// Text lengths in tokens (at batch 32).
    pub seq_lens: Vec<usize>,
    /// Timed runs per measurement (its median is taken).
    pub repeats: usize,
    /// Rounds: in each, every shape is measured by every engine in turn.
    pub rounds: usize,
    /// Precisions to measure (variants the package carries).
    pub precisions: Vec<Precision>,
    /// Times the package is opened (the first fills the checksum cache).
    pub open_repeats: usize,
    /// How the package is opened and run; `intra_op_threads` defaults to all cores, and
    /// `precision` is replaced by each of `precisions`.
    pub runtime: RuntimeOptions,
}

/// Texts per text-graph run (the baselines of docs/design.md use 32).
const TEXT_BATCH: usize = 32;

/// One measured workload: a graph and its batch size (or text length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Vision(usize),
    Text(usize),
    Head(usize),
    /// One image, one text of [`QUERY_TOKENS`] tokens, and the projection of both.
    Query,
}

/// Tokens of the query's text (a short caption).
const QUERY_TOKENS: usize = 16;

impl Shape {
    fn label(self) -> String {
        match self {
            Shape::Vision(b) => format!("vision b{b}"),
            Shape::Text(s) => format!("text {TEXT_BATCH}x{s}"),
            Shape::Head(b) => format!("head b{b}"),
            Shape::Query => "query b1 (3 graphs)".to_owned(),
        }
    }

    /// Items (images, texts, feature pairs) per run.
    fn items(self) -> usize {
        match self {
            Shape::Vision(b) | Shape::Head(b) => b,
            Shape::Text(_) => TEXT_BATCH,
            Shape::Query => 1,
        }
    }

    /// The request `tools/bench_model.py --serve` takes.
    fn request(self, engine: &str, repeats: usize) -> serde_json::Value {
        let (graph, size) = match self {
            Shape::Vision(b) => ("vision", b),
            Shape::Text(s) => ("text", s),
            Shape::Head(b) => ("head", b),
            Shape::Query => ("query", 1),
        };
        serde_json::json!({"engine": engine, "graph": graph, "size": size, "repeats": repeats})
    }
}

/// A package opened in one precision, with its inputs for every shape.
struct VtdeEngine {
    name: String,
    model: Model,
    inputs: Inputs,
    /// The torch-exported graphs run by vtde's runtime: a baseline column.
    is_baseline: bool,
}

/// Deterministic random inputs, made once per engine.
struct Inputs {
    pixels: Vec<(usize, Array4<f32>)>,
    texts: Vec<(usize, TextBatch)>,
    features: Vec<(usize, Array2<f32>, Array2<f32>)>,
    query: (Array4<f32>, TextBatch),
}

impl VtdeEngine {
    fn run(&self, shape: Shape) -> Result<()> {
        let find = |what: &str| anyhow::anyhow!("no {what} input prepared for {shape:?}");
        match shape {
            Shape::Vision(b) => {
                let (_, pixels) = self
                    .inputs
                    .pixels
                    .iter()
                    .find(|(n, _)| *n == b)
                    .ok_or_else(|| find("pixel"))?;
                self.model.image_features(pixels.view()).map(drop)?;
            }
            Shape::Text(s) => {
                let (_, batch) = self
                    .inputs
                    .texts
                    .iter()
                    .find(|(n, _)| *n == s)
                    .ok_or_else(|| find("text"))?;
                self.model.text_features(batch).map(drop)?;
            }
            Shape::Head(b) => {
                let (_, image, text) = self
                    .inputs
                    .features
                    .iter()
                    .find(|(n, _, _)| *n == b)
                    .ok_or_else(|| find("feature"))?;
                self.model.project(image.view(), text.view()).map(drop)?;
            }
            Shape::Query => {
                let (pixels, text) = &self.inputs.query;
                let image = self.model.image_features(pixels.view())?;
                let text = self.model.text_features(text)?;
                self.model.project(image.view(), text.view()).map(drop)?;
            }
        }
        Ok(())
    }
}

/// Runs the graph-speed benchmark (vtde and the Python baselines, interleaved) and prints
/// its table.
pub fn run(args: &ModelBenchSettings) -> Result<()> {
    if args.repeats == 0 || args.rounds == 0 {
        bail!("repeats and rounds must be at least 1");
    }
    let threads = args
        .runtime
        .intra_op_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut engines = Vec::new();
    for &precision in &args.precisions {
        engines.push(open_engine(args, precision, threads)?);
    }
    let max_length = engines
        .first()
        .map_or(usize::MAX, |e| e.model.manifest().text.max_length);
    let mut shapes: Vec<Shape> = args.batch_sizes.iter().map(|&b| Shape::Vision(b)).collect();
    for &s in &args.seq_lens {
        if s > max_length {
            eprintln!("vtde bench: skipping {s} tokens: the text tower takes at most {max_length}");
        } else {
            shapes.push(Shape::Text(s));
        }
    }
    shapes.extend(args.batch_sizes.iter().map(|&b| Shape::Head(b)));
    shapes.push(Shape::Query);

    let export_dir = std::env::temp_dir().join(format!("vtde-bench-{}", std::process::id()));
    let mut python = match (&args.checkpoint, &args.python) {
        (Some(checkpoint), Some(python)) => {
            let baselines =
                PythonBaselines::start(checkpoint, python, args, threads, &export_dir, &engines)?;
            engines.push(open_torch_graphs(args, threads, &export_dir)?);
            Some(baselines)
        }
        _ => {
            eprintln!("vtde bench: Python baselines skipped (give --checkpoint and --python)");
            None
        }
    };
    let baseline_names: &[(&str, &str)] = if python.is_some() {
        &[
            ("torch", "torch eager"),
            ("onnxruntime", "onnxruntime (torch export)"),
        ]
    } else {
        &[]
    };

    // rates[round][shape][column]: vtde engines first, then the baselines.
    let columns = engines.len() + baseline_names.len();
    let mut rates = vec![vec![vec![f64::NAN; columns]; shapes.len()]; args.rounds];
    for (round, round_rates) in rates.iter_mut().enumerate() {
        for (i, &shape) in shapes.iter().enumerate() {
            for (j, engine) in engines.iter().enumerate() {
                let rate = median_rate(shape.items(), args.repeats, || {
                    engine
                        .run(shape)
                        .with_context(|| format!("{} {}", engine.name, shape.label()))
                })?;
                round_rates[i][j] = rate;
            }
            if let (Some(python), false) = (python.as_mut(), shape == Shape::Query) {
                for (k, (engine, _)) in baseline_names.iter().enumerate() {
                    round_rates[i][engines.len() + k] =
                        python.measure(shape, engine, args.repeats)?;
                }
            }
            eprintln!(
                "vtde bench: round {}/{} {}: {}",
                round + 1,
                args.rounds,
                shape.label(),
                round_rates[i]
                    .iter()
                    .map(|r| format!("{r:.1}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    if let Some(python) = python {
        python.finish()?;
    }
    let _ = std::fs::remove_dir_all(&export_dir);

    let mut names: Vec<String> = engines.iter().map(|e| e.name.clone()).collect();
    names.extend(baseline_names.iter().map(|(_, n)| (*n).to_owned()));
    let vtde_columns = engines.iter().filter(|e| !e.is_baseline).count();
    print_table(&shapes, &names, vtde_columns, &rates, threads, args);
    if let Some(peak) = super::proc_status_mib("VmHWM") {
        println!(
            "\npeak resident memory of vtde (this process, all precisions open): {peak:.0} MiB"
        );
    }
    Ok(())
}

/// Opens the package in `precision`, timing the opens, and prepares the inputs.
fn open_engine(
    args: &ModelBenchSettings,
    precision: Precision,
    threads: usize,
) -> Result<VtdeEngine> {
    let options = args
        .runtime
        .clone()
        .with_threads(threads)
        .with_precision(precision);
    let mut open_times = Vec::new();
    let mut model = None;
    for _ in 0..args.open_repeats.max(1) {
        drop(model.take());
        let started = Instant::now();
        model = Some(
            Model::open(&args.package, &options)
                .with_context(|| format!("opening package {}", args.package.display()))?,
        );
        open_times.push(started.elapsed().as_secs_f64());
    }
    let model = model.context("package was not opened")?;
    let first = open_times[0];
    let mut rest = open_times[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    match rest.get(rest.len() / 2) {
        Some(median) => println!(
            "vtde {precision}: package open (checksums verified, sessions ready): \
             first {first:.3}s, then median {median:.3}s over {} opens",
            rest.len()
        ),
        None => println!("vtde {precision}: package open (sessions ready): {first:.3}s"),
    }
    let inputs = make_inputs(&model, args);
    Ok(VtdeEngine {
        name: format!("vtde {precision}"),
        model,
        inputs,
        is_baseline: false,
    })
}

/// Opens the torch-exported graphs that `tools/bench_model.py` wrote to `dir` in vtde's
/// runtime, as a package: the manifest and tokenizer are copied beside them (checksums
/// are not verified: the manifest's are those of vtde's graphs).
fn open_torch_graphs(args: &ModelBenchSettings, threads: usize, dir: &Path) -> Result<VtdeEngine> {
    let unverified = PackageOptions::default().with_checksum_verification(false);
    let source = vtde_runtime::Package::open(&args.package, &unverified)
        .with_context(|| format!("opening package {}", args.package.display()))?;
    for kind in vtde_runtime::GraphKind::ALL {
        let exported = dir.join(match kind {
            vtde_runtime::GraphKind::Vision => "vision.onnx",
            vtde_runtime::GraphKind::Text => "text.onnx",
            vtde_runtime::GraphKind::Projection => "projection.onnx",
        });
        let name = source.graph_path(kind);
        let name = name.file_name().context("graph file name")?;
        if dir.join(name) != exported {
            std::fs::rename(&exported, dir.join(name))
                .with_context(|| format!("renaming {}", exported.display()))?;
        }
    }
    // The torch-exported graphs hold their weights inside: no weights files.
    let mut manifest = source.manifest().clone();
    for graph in [
        &mut manifest.graphs.vision,
        &mut manifest.graphs.text,
        &mut manifest.graphs.projection,
    ] {
        graph.weights = None;
        graph.variants.clear();
    }
    let manifest_path = dir.join(vtde_runtime::manifest::MANIFEST_FILE);
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    let tokenizer = source.tokenizer_path();
    let name = tokenizer.file_name().context("tokenizer file name")?;
    std::fs::copy(&tokenizer, dir.join(name))
        .with_context(|| format!("copying {} to {}", tokenizer.display(), dir.display()))?;
    let options = args
        .runtime
        .clone()
        .with_threads(threads)
        .with_checksum_verification(false);
    let model = Model::open(dir, &options)
        .with_context(|| format!("opening the torch-exported graphs in {}", dir.display()))?;
    let inputs = make_inputs(&model, args);
    Ok(VtdeEngine {
        name: "torch graphs in vtde".to_owned(),
        model,
        inputs,
        is_baseline: true,
    })
}

fn make_inputs(model: &Model, args: &ModelBenchSettings) -> Inputs {
    let m = model.manifest();
    let (h, w) = (m.image.height as usize, m.image.width as usize);
    let mut seed = 1u64;
    let mut uniform = move || (super::lcg(&mut seed) % 2000) as f32 / 1000.0 - 1.0;
    let pixels = args
        .batch_sizes
        .iter()
        .map(|&b| (b, Array4::from_shape_fn((b, 3, h, w), |_| uniform())))
        .collect();
    let (dv, dt) = (m.graphs.vision.output_dim, m.graphs.text.output_dim);
    let features = args
        .batch_sizes
        .iter()
        .map(|&b| {
            (
                b,
                Array2::from_shape_fn((b, dv), |_| uniform()),
                Array2::from_shape_fn((b, dt), |_| uniform()),
            )
        })
        .collect();
    let mut seed = 2u64;
    let texts = args
        .seq_lens
        .iter()
        .filter(|&&s| s <= m.text.max_length)
        .map(|&s| (s, super::random_text_batch(model, TEXT_BATCH, s, &mut seed)))
        .collect();
    let query = (
        Array4::from_shape_fn((1, 3, h, w), |_| uniform()),
        super::random_text_batch(model, 1, QUERY_TOKENS.min(m.text.max_length), &mut seed),
    );
    Inputs {
        pixels,
        texts,
        features,
        query,
    }
}

/// Shortest timed sample: workloads faster than this (the projection head takes tens of
/// microseconds) are repeated within each timed sample, so that timer resolution and
/// scheduler noise do not dominate. `tools/bench_model.py` does the same.
const MIN_SAMPLE_SECONDS: f64 = 0.05;

fn median_rate(items: usize, repeats: usize, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    run()?; // warm-up
    let once = t.elapsed().as_secs_f64().max(1e-7);
    let inner = ((MIN_SAMPLE_SECONDS / once).ceil() as usize).clamp(1, 100_000);
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        for _ in 0..inner {
            run()?;
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((items * inner) as f64 / times[times.len() / 2])
}

/// `tools/bench_model.py --serve`, answering one measurement per request line.
struct PythonBaselines {
    child: Child,
    requests: ChildStdin,
    replies: BufReader<ChildStdout>,
}

impl PythonBaselines {
    fn start(
        checkpoint: &Path,
        python: &Path,
        args: &ModelBenchSettings,
        threads: usize,
        export_dir: &Path,
        engines: &[VtdeEngine],
    ) -> Result<Self> {
        let text_inputs = engines
            .first()
            .map(|e| e.model.manifest().text.inputs.join(","))
            .context("no vtde precision to measure")?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/bench_model.py");
        let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        eprintln!(
            "vtde bench: starting the Python baselines ({} --serve)",
            script.display()
        );
        let mut child = Command::new(python)
            .arg(&script)
            .arg("--serve")
            .arg("--checkpoint")
            .arg(checkpoint)
            .args(["--batch-sizes", &join(&args.batch_sizes)])
            .args(["--seq-lens", &join(&args.seq_lens)])
            .args(["--threads", &threads.to_string()])
            .args(["--text-batch", &TEXT_BATCH.to_string()])
            .arg("--export-dir")
            .arg(export_dir)
            .args(["--text-inputs", &text_inputs])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {} {}", python.display(), script.display()))?;
        let (Some(requests), Some(replies)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("no pipes to {}", script.display());
        };
        let mut baselines = PythonBaselines {
            child,
            requests,
            replies: BufReader::new(replies),
        };
        let ready = baselines.read_reply()?;
        if ready.get("ready").and_then(|v| v.as_bool()) != Some(true) {
            bail!("{} did not start: {ready}", script.display());
        }
        Ok(baselines)
    }

    fn read_reply(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        let n = self
            .replies
            .read_line(&mut line)
            .context("reading from tools/bench_model.py")?;
        if n == 0 {
            let status = self.child.wait().ok();
            bail!("tools/bench_model.py exited ({status:?}); its messages are above");
        }
        serde_json::from_str(&line)
            .with_context(|| format!("tools/bench_model.py replied {line:?}"))
    }

    fn measure(&mut self, shape: Shape, engine: &str, repeats: usize) -> Result<f64> {
        writeln!(self.requests, "{}", shape.request(engine, repeats))
            .and_then(|()| self.requests.flush())
            .context("writing to tools/bench_model.py")?;
        let reply = self.read_reply()?;
        reply
            .get("rate")
            .and_then(|v| v.as_f64())
            .with_context(|| format!("tools/bench_model.py replied {reply} to {shape:?}"))
    }

    fn finish(mut self) -> Result<()> {
        drop(self.requests); // EOF: the script exits
        let status = self
            .child
            .wait()
            .context("waiting for tools/bench_model.py")?;
        if !status.success() {
            bail!("tools/bench_model.py failed ({status})");
        }
        Ok(())
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn print_table(
    shapes: &[Shape],
    names: &[String],
    vtde_columns: usize,
    rates: &[Vec<Vec<f64>>],
    threads: usize,
    args: &ModelBenchSettings,
) {
    println!(
        "throughput, items/s: median over {} interleaved rounds of the median of {} runs; \
         {threads} intra-op threads",
        args.rounds, args.repeats
    );
    println!(
        "ratio = vtde / baseline, and each precision after the first / the first: the \
         median of the per-round ratios"
    );
    let mut header = vec!["shape".to_owned()];
    header.extend(names.iter().cloned());
    for name in &names[1..vtde_columns] {
        header.push(format!("{name}/{}", names[0]));
    }
    for name in &names[..vtde_columns] {
        for base in &names[vtde_columns..] {
            let base = match base.as_str() {
                "torch graphs in vtde" => "torch graphs",
                other => other.split(' ').next().unwrap_or(other),
            };
            header.push(format!("{name}/{base}"));
        }
    }
    let widths: Vec<usize> = header.iter().map(|h| h.len().max(10)).collect();
    let row = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<14}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", row(&header));
    for (i, shape) in shapes.iter().enumerate() {
        let mut cells = vec![shape.label()];
        for j in 0..names.len() {
            cells.push(format!(
                "{:.1}",
                median(rates.iter().map(|r| r[i][j]).collect())
            ));
        }
        for j in 1..vtde_columns {
            let ratio = median(rates.iter().map(|r| r[i][j] / r[i][0]).collect());
            cells.push(format!("{ratio:.2}x"));
        }
        for j in 0..vtde_columns {
            for k in vtde_columns..names.len() {
                let ratio = median(rates.iter().map(|r| r[i][j] / r[i][k]).collect());
                cells.push(format!("{ratio:.2}x"));
            }
        }
        println!("{}", row(&cells));
    }
}
