//! The flags of [`crate::args`] turned, once, into the settings the commands work with.
//!
//! Each command gets one struct, built by its `from_args` before anything runs: how the
//! model is opened ([`RuntimeOptions`]), which files are read and how ([`Inputs`],
//! [`ImageReading`]), how the decoding pool runs (batch size and decoding threads, in
//! the runtime options), the output
//! format and paths. The checks that clap cannot express (duplicate labels, a template
//! without `{}`) are made here, so a command's `run` reads: settings, then the model and
//! the inputs, then the output. `vtde bench` gets the settings structs of `vtde-bench`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use vtde_runtime::Precision;
use vtde_runtime::{
    CoreMlComputeUnits, CoreMlOptions, ExecutionProvider, ImageOptions, OptimizationLevel,
    RuntimeOptions, TensorRtOptions,
};

use crate::args::{
    BenchFolderArgs, BenchMemoryArgs, BenchModelArgs, BenchPreprocessArgs, CoreMlFormat,
    CoreMlUnits, EmbedArgs, EmbedTextArgs, ExportArgs, Format, InfoArgs, InputArgs, MergeArgs,
    Optimization, PipelineArgs, ProviderName, RuntimeArgs, ScoreArgs, SearchArgs, Shard,
    WarmupArgs,
};
use crate::formats::score_file::{default_errors_path, ScoreSettings};
use crate::inputs::{self, ImageReading, Input, Selection};

/// `vtde export`.
pub struct Export {
    pub checkpoint: PathBuf,
    pub out: PathBuf,
    pub options: vtde_export::ExportOptions,
}

impl Export {
    pub fn from_args(args: &ExportArgs) -> Self {
        // `--quantize int8` is `--precision int8`; each variant once, in name order.
        let mut variants = args.precision.clone();
        if args.quantize.is_some() {
            variants.push(Precision::Int8);
        }
        variants.sort_by_key(|p| p.name());
        variants.dedup();
        Export {
            checkpoint: args.checkpoint.clone(),
            out: args.out.clone(),
            options: vtde_export::ExportOptions::default().with_variants(variants),
        }
    }
}

/// `vtde info`.
pub struct Info {
    pub package: PathBuf,
    pub runtime: RuntimeOptions,
}

impl Info {
    pub fn from_args(args: &InfoArgs) -> Self {
        Info {
            package: args.package.clone(),
            runtime: runtime_options(&args.runtime, ImageOptions::default()),
        }
    }
}

/// `vtde warmup`.
pub struct Warmup {
    pub package: PathBuf,
    pub runtime: RuntimeOptions,
    pub batch_size: usize,
}

impl Warmup {
    pub fn from_args(args: &WarmupArgs) -> Self {
        let batch_size = args.batch_size as usize;
        Warmup {
            package: args.package.clone(),
            runtime: runtime_options(&args.runtime, ImageOptions::default())
                .with_batch_size(batch_size),
            batch_size,
        }
    }
}

/// `vtde score`.
pub struct Score {
    pub package: PathBuf,
    pub runtime: RuntimeOptions,
    /// What shapes the results, as recorded in the progress marker.
    pub recorded: ScoreSettings,
    pub inputs: Inputs,
    /// Images per batch (also in `runtime`).
    pub batch_size: usize,
    /// The results file (`-o`; stdout without it).
    pub output: Option<PathBuf>,
    /// The errors file: `--errors`, else beside the results file, else none.
    pub errors: Option<PathBuf>,
    pub resume: bool,
    /// `--model-only`: the model alone, on the first batch, for benchmarks.
    pub model_only: bool,
}

impl Score {
    pub fn from_args(args: &ScoreArgs) -> Result<Self> {
        let labels = labels(args)?;
        for t in &args.template {
            if !t.contains("{}") {
                bail!("--template {t:?} has no {{}} for the label");
            }
        }
        let output = args.output.output.clone();
        let format = output_format(args.output.format, output.as_deref());
        let inputs = Inputs::from_args(&args.input);
        let reading = image_reading(&args.pipeline);
        let errors = match (&args.output.errors, &output) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(o)) => Some(default_errors_path(o, format)),
            (None, None) => None,
        };
        Ok(Score {
            package: args.package.clone(),
            runtime: pipeline_runtime_options(&args.runtime, &args.pipeline, &reading),
            recorded: ScoreSettings {
                labels,
                templates: args.template.clone(),
                top_k: args.top_k.map(|k| k as usize),
                format,
                precision: args.runtime.precision.to_string(),
                selection: inputs.selection.clone(),
                reading,
            },
            inputs,
            batch_size: args.pipeline.batch_size as usize,
            output,
            errors,
            resume: args.output.resume,
            model_only: args.model_only,
        })
    }
}

/// `vtde embed`.
pub struct Embed {
    pub package: PathBuf,
    pub runtime: RuntimeOptions,
    /// The `--run-precision`, as recorded.
    pub precision: String,
    pub inputs: Inputs,
    pub reading: ImageReading,
    /// The embeddings directory.
    pub output: PathBuf,
    pub resume: bool,
}

impl Embed {
    pub fn from_args(args: &EmbedArgs) -> Self {
        let reading = image_reading(&args.pipeline);
        Embed {
            package: args.package.clone(),
            runtime: pipeline_runtime_options(&args.runtime, &args.pipeline, &reading),
            precision: args.runtime.precision.to_string(),
            inputs: Inputs::from_args(&args.input),
            reading,
            output: args.output.clone(),
            resume: args.resume,
        }
    }
}

/// `vtde embed-text`.
pub struct EmbedText {
    pub package: PathBuf,
    pub runtime: RuntimeOptions,
    /// The `--run-precision`, as recorded.
    pub precision: String,
    /// The texts to embed: the non-blank lines of `texts_file`.
    pub texts: Vec<String>,
    pub texts_file: PathBuf,
    pub batch_size: usize,
    /// The embeddings directory.
    pub output: PathBuf,
    pub resume: bool,
}

impl EmbedText {
    pub fn from_args(args: &EmbedTextArgs) -> Result<Self> {
        Ok(EmbedText {
            texts: read_lines(&args.texts_file)?,
            package: args.package.clone(),
            runtime: runtime_options(&args.runtime, ImageOptions::default()),
            precision: args.runtime.precision.to_string(),
            texts_file: args.texts_file.clone(),
            batch_size: args.batch_size as usize,
            output: args.output.clone(),
            resume: args.resume,
        })
    }
}

/// What `vtde search` looks for.
pub enum Query {
    Text(String),
    Image(PathBuf),
}

/// `vtde search`.
pub struct Search {
    /// The embeddings directory.
    pub dir: PathBuf,
    pub query: Query,
    pub top: usize,
    /// `--package`; else the package recorded in the directory.
    pub package: Option<PathBuf>,
    /// The runtime flags; image files are read as the directory records.
    pub runtime: RuntimeOptions,
    /// The results file (`-o`; stdout without it).
    pub output: Option<PathBuf>,
    pub format: Format,
}

impl Search {
    pub fn from_args(args: &SearchArgs) -> Result<Self> {
        let query = match (&args.query, &args.image) {
            (_, Some(image)) => Query::Image(image.clone()),
            (Some(text), None) => Query::Text(text.clone()),
            (None, None) => bail!("give a query text or --image FILE"),
        };
        Ok(Search {
            dir: args.dir.clone(),
            query,
            top: args.top as usize,
            package: args.package.clone(),
            runtime: runtime_options(&args.runtime, ImageOptions::default()),
            output: args.output.clone(),
            format: output_format(args.format, args.output.as_deref()),
        })
    }
}

/// `vtde merge`.
pub struct Merge {
    /// The shard outputs: score result files or embeddings directories.
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub allow_incomplete: bool,
}

impl Merge {
    pub fn from_args(args: &MergeArgs) -> Self {
        Merge {
            inputs: args.inputs.clone(),
            output: args.output.clone(),
            allow_incomplete: args.allow_incomplete,
        }
    }
}

/// Which files a folder run reads: the PATHS, the walk's selection, the shard.
pub struct Inputs {
    pub roots: Vec<PathBuf>,
    pub selection: Selection,
    pub shard: Option<Shard>,
}

impl Inputs {
    fn from_args(args: &InputArgs) -> Self {
        Inputs {
            roots: args.paths.clone(),
            selection: Selection::new(&args.extensions, args.hidden, args.follow_links),
            shard: args.shard,
        }
    }

    /// Walks the roots: the inputs of this shard, in order.
    pub fn collect(&self) -> Vec<Input> {
        inputs::select(&self.roots, &self.selection, self.shard)
    }

    /// The roots as recorded in markers (losslessly: [`crate::formats::paths`]).
    pub fn recorded_roots(&self) -> Vec<String> {
        self.roots
            .iter()
            .map(|p| crate::formats::paths::encode(p))
            .collect()
    }
}

/// The runtime options the flags ask for, reading image files with `image`.
pub fn runtime_options(args: &RuntimeArgs, image: ImageOptions) -> RuntimeOptions {
    let mut options = RuntimeOptions::default()
        .with_optimization_level(match args.optimization {
            Optimization::Disable => OptimizationLevel::Disable,
            Optimization::Basic => OptimizationLevel::Basic,
            Optimization::Extended => OptimizationLevel::Extended,
            Optimization::All => OptimizationLevel::All,
        })
        .with_memory_arena(!args.no_memory_arena)
        .with_spinning(args.spin)
        .with_shared_thread_pool(!args.own_thread_pools)
        .with_precision(args.precision)
        .with_image_options(image);
    if let Some(library) = &args.onnxruntime {
        options = options.with_onnxruntime_library(library);
    }
    if let Some(threads) = args.threads {
        options = options.with_threads(threads);
    }
    if let Some(threads) = args.inter_op_threads {
        options = options.with_inter_op_threads(threads);
    }
    options
        .with_execution_providers(providers(args))
        .with_cpu_fallback(args.allow_cpu_fallback)
}

/// The execution providers the flags ask for, in order, with their settings.
fn providers(args: &RuntimeArgs) -> Vec<ExecutionProvider> {
    let device = i32::from(args.device);
    args.providers
        .iter()
        .map(|p| match p {
            ProviderName::Cpu => ExecutionProvider::Cpu,
            ProviderName::Cuda => ExecutionProvider::cuda(device),
            ProviderName::Tensorrt => {
                let mut trt = TensorRtOptions::default()
                    .with_device_id(device)
                    .with_fp16(!args.no_trt_fp16)
                    .with_cache(!args.no_trt_cache);
                if let Some(mib) = args.trt_workspace {
                    trt = trt.with_workspace_mib(mib);
                }
                if let Some(max) = args.max_batch {
                    trt = trt.with_max_batch(max as usize);
                }
                ExecutionProvider::TensorRt(trt)
            }
            ProviderName::Coreml => ExecutionProvider::CoreMl(
                CoreMlOptions::default()
                    .with_compute_units(match args.coreml_units {
                        CoreMlUnits::All => CoreMlComputeUnits::All,
                        CoreMlUnits::CpuGpu => CoreMlComputeUnits::CpuAndGpu,
                        CoreMlUnits::CpuNe => CoreMlComputeUnits::CpuAndNeuralEngine,
                        CoreMlUnits::Cpu => CoreMlComputeUnits::CpuOnly,
                    })
                    .with_ml_program(args.coreml_format == CoreMlFormat::Mlprogram),
            ),
        })
        .collect()
}

/// The runtime options of a command that streams image files: the runtime flags, the
/// image reading, and the pipeline's batch size and decoding threads (default: one per
/// core; they sleep when they are ahead of the model).
fn pipeline_runtime_options(
    runtime: &RuntimeArgs,
    pipeline: &PipelineArgs,
    reading: &ImageReading,
) -> RuntimeOptions {
    let mut image = reading.options();
    if let Some(threads) = pipeline.decode_threads {
        image = image.with_decode_threads(threads as usize);
    }
    image = image.with_low_priority_decoding(!pipeline.normal_priority_decoding);
    runtime_options(runtime, image).with_batch_size(pipeline.batch_size as usize)
}

/// How image files are read, from the pipeline flags.
fn image_reading(args: &PipelineArgs) -> ImageReading {
    ImageReading {
        exif_orientation: args.exif_orientation(),
        fast_jpeg: args.fast_jpeg,
        max_pixels: args
            .max_pixels
            .unwrap_or(ImageReading::default().max_pixels),
    }
}

/// `--format`, else guessed from the output file's extension, else CSV.
fn output_format(format: Option<Format>, output: Option<&Path>) -> Format {
    format.unwrap_or_else(|| {
        let ext = output
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("jsonl" | "ndjson") => Format::Jsonl,
            _ => Format::Csv,
        }
    })
}

/// `--labels` or the lines of `--labels-file`; at least one, no duplicates.
fn labels(args: &ScoreArgs) -> Result<Vec<String>> {
    let labels = match &args.labels_file {
        // Spaces around a label in a file are layout, not meaning.
        Some(file) => read_lines(file)?
            .iter()
            .map(|l| l.trim().to_owned())
            .collect(),
        None => args.labels.clone(),
    };
    if labels.is_empty() {
        bail!("no labels given");
    }
    let mut seen = HashSet::new();
    for l in &labels {
        if !seen.insert(l) {
            bail!("label {l:?} is given twice");
        }
    }
    Ok(labels)
}

/// The non-blank lines of a UTF-8 text file (a trailing `\r` is removed).
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (UTF-8 text)", path.display()))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if lines.is_empty() {
        bail!("{} has no non-blank lines", path.display());
    }
    Ok(lines)
}

/// `vtde bench model`.
pub fn bench_model(args: &BenchModelArgs) -> Result<vtde_bench::ModelBenchSettings> {
    if args.repeats == 0 || args.rounds == 0 {
        bail!("--repeats and --rounds must be at least 1");
    }
    Ok(vtde_bench::ModelBenchSettings {
        package: args.package.clone(),
        checkpoint: args.checkpoint.clone(),
        python: args.python.clone(),
        batch_sizes: args.batch_sizes.clone(),
        seq_lens: args.seq_lens.clone(),
        repeats: args.repeats,
        rounds: args.rounds,
        precisions: args.precisions.clone(),
        open_repeats: args.open_repeats,
        runtime: runtime_options(&args.runtime, ImageOptions::default()),
    })
}

/// `vtde bench memory`.
pub fn bench_memory(args: &BenchMemoryArgs) -> Result<vtde_bench::MemoryBenchSettings> {
    let warm_up = vtde_bench::memory::WARM_UP_RUNS;
    if args.runs <= warm_up {
        bail!("--runs must be more than the {warm_up} warm-up runs");
    }
    if args.batch_size == 0 || args.seq_len == 0 || args.samples == 0 {
        bail!("--batch-size, --seq-len and --samples must be at least 1");
    }
    Ok(vtde_bench::MemoryBenchSettings {
        package: args.package.clone(),
        runs: args.runs,
        batch_size: args.batch_size,
        seq_len: args.seq_len,
        samples: args.samples,
        runtime: runtime_options(&args.runtime, ImageOptions::default()),
    })
}

/// `vtde bench folder`: the files the input flags select, and the run's options.
pub fn bench_folder(args: &BenchFolderArgs) -> Result<vtde_bench::FolderBenchSettings> {
    let reading = image_reading(&args.pipeline);
    let inputs = Inputs::from_args(&args.input).collect();
    if inputs.is_empty() {
        bail!("no image files under the paths given");
    }
    Ok(vtde_bench::FolderBenchSettings {
        package: args.package.clone(),
        images: inputs.into_iter().map(|input| input.path).collect(),
        rounds: args.rounds as usize,
        runtime: pipeline_runtime_options(&args.runtime, &args.pipeline, &reading),
    })
}

/// `vtde bench preprocess`.
pub fn bench_preprocess(args: &BenchPreprocessArgs) -> Result<vtde_bench::PreprocessBenchSettings> {
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    Ok(vtde_bench::PreprocessBenchSettings {
        package: args.package.clone(),
        images: args.images.clone(),
        python: args.python.clone(),
        repeats: args.repeats,
    })
}

/// `vtde compose`.
pub struct Compose {
    pub vision: PathBuf,
    pub text: PathBuf,
    pub out: PathBuf,
    pub options: vtde_fit::ComposeOptions,
}

impl Compose {
    pub fn from_args(args: &crate::args::ComposeArgs) -> Result<Self> {
        if !args.logit_scale.is_finite() {
            bail!("--logit-scale {} is not a finite number", args.logit_scale);
        }
        Ok(Compose {
            vision: args.vision.clone(),
            text: args.text.clone(),
            out: args.out.clone(),
            options: vtde_fit::ComposeOptions {
                projection_dim: args.projection_dim as usize,
                logit_scale: args.logit_scale,
                seed: args.seed,
            },
        })
    }
}

/// `vtde fit`.
pub struct Fit {
    pub checkpoint: PathBuf,
    pub pairs: PathBuf,
    pub out: PathBuf,
    /// The feature cache directory.
    pub cache: PathBuf,
    /// How the towers run while computing features (batch size: `--embed-batch`).
    pub runtime: RuntimeOptions,
    pub options: vtde_fit::FitOptions,
}

impl Fit {
    pub fn from_args(args: &crate::args::FitArgs) -> Result<Self> {
        let options = vtde_fit::FitOptions {
            epochs: args.epochs as usize,
            batch_size: args.batch_size as usize,
            learning_rate: args.learning_rate,
            warmup: args.warmup,
            weight_decay: args.weight_decay,
            validation: args.validation,
            seed: args.seed,
            ..vtde_fit::FitOptions::default()
        };
        options.check().context("checking the fit settings")?;
        let cache = match &args.cache {
            Some(dir) => dir.clone(),
            None => {
                let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty());
                parent.unwrap_or(Path::new(".")).join(".vtde-fit-cache")
            }
        };
        let mut image = ImageReading::default().options();
        if let Some(threads) = args.decode_threads {
            image = image.with_decode_threads(threads as usize);
        }
        Ok(Fit {
            checkpoint: args.checkpoint.clone(),
            pairs: args.pairs.clone(),
            out: args.out.clone(),
            cache,
            runtime: runtime_options(&args.runtime, image)
                .with_batch_size(args.embed_batch as usize),
            options,
        })
    }
}
