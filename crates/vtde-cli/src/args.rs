//! Every command-line flag of `vtde`, parsed in this one place (clap derive).
//!
//! Commands that walk folders share [`InputArgs`] (what to read), [`PipelineArgs`] (how
//! to decode and batch) and [`RuntimeArgs`] (how to run the model); the checks that clap
//! cannot express (a template without `{}`, duplicate labels) are in the commands.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use vtde_runtime::Precision;

/// Exit codes, shown in `--help` and kept in one place with the code that returns them.
pub const EXIT_CODES: &str = "Exit codes: 0 when everything went well; 1 when some input \
files failed (each is reported on stderr and in the errors file) and the rest were processed; \
2 for usage, model, ONNX Runtime or output errors.";

/// vtde: run CLIP-style vision-text dual encoders through ONNX Runtime, without Python.
///
/// Exit codes: 0 when everything went well; 1 when some input files failed (each is
/// reported on stderr and in the errors file) and the rest were processed; 2 for usage,
/// model, ONNX Runtime or output errors.
#[derive(Debug, Parser)]
#[command(name = "vtde", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export a Hugging Face checkpoint directory to a vtde package.
    Export(ExportArgs),
    /// Describe a package, the ONNX Runtime library, and where each graph runs with the
    /// providers asked for.
    #[command(after_help = EXIT_CODES)]
    Info(InfoArgs),
    /// Open a package on its providers ahead of deployment and run each graph once, so
    /// that TensorRT builds and caches its engines now; prints how long it took.
    #[command(after_help = EXIT_CODES)]
    Warmup(WarmupArgs),
    /// Zero-shot classify images against text labels (CSV or JSONL, to stdout or a file).
    #[command(after_help = EXIT_CODES)]
    Score(ScoreArgs),
    /// Embed images into DIR/embeddings.npy (float32, one row per image) and
    /// DIR/index.jsonl (their paths, same order).
    #[command(after_help = EXIT_CODES)]
    Embed(EmbedArgs),
    /// Embed the lines of a text file into DIR/embeddings.npy and DIR/index.jsonl.
    #[command(name = "embed-text", after_help = EXIT_CODES)]
    EmbedText(EmbedTextArgs),
    /// Find the images (or texts) of an embeddings directory closest to a text query or
    /// to an image (--image).
    #[command(after_help = EXIT_CODES)]
    Search(SearchArgs),
    /// Combine the outputs of `--shard K/N` runs (score files or embeddings directories)
    /// into one, identical to an unsharded run.
    #[command(after_help = EXIT_CODES)]
    Merge(MergeArgs),
    /// Measure speed: the graphs of a package, or image preprocessing, against the Python
    /// baselines in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Build a dual encoder from a pretrained vision checkpoint and a pretrained text
    /// checkpoint: a VisionTextDualEncoderModel checkpoint with fresh projection heads.
    Compose(ComposeArgs),
    /// Fit the projection heads and logit_scale of a dual encoder checkpoint on
    /// image-caption pairs, towers locked; writes the fitted checkpoint and its package.
    Fit(FitArgs),
}

/// `vtde compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Vision checkpoint directory (ViT, DeiT, BEiT, CLIP; a base or task model as
    /// transformers saves it, or a dual encoder whose vision tower is taken).
    #[arg(long, value_name = "VISION_DIR")]
    pub vision: PathBuf,
    /// Text checkpoint directory (BERT, RoBERTa, XLM-R, CLIP; or a sentence-transformers
    /// folder, or a dual encoder whose text tower is taken).
    #[arg(long, value_name = "TEXT_DIR")]
    pub text: PathBuf,
    /// Checkpoint directory to write (absent or empty).
    #[arg(short = 'o', long = "out", value_name = "CHECKPOINT_DIR")]
    pub out: PathBuf,
    /// Output size of the projection heads.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub projection_dim: u32,
    /// Initial logit_scale (its exp multiplies the cosine similarities; 2.6592 = ln(1/0.07)).
    #[arg(long, default_value_t = 2.6592)]
    pub logit_scale: f32,
    /// Seed of the projections' random initial values.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `vtde fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Dual encoder checkpoint directory (e.g. written by `vtde compose`).
    pub checkpoint: PathBuf,
    /// Image-caption pairs: a CSV file (columns image,caption), a JSONL file (keys image,
    /// caption), image paths relative to the file; or a folder of images each with a
    /// .txt caption beside it.
    #[arg(long, value_name = "PAIRS")]
    pub pairs: PathBuf,
    /// Directory to write: the fitted checkpoint, fit_report.json and package/.
    #[arg(short = 'o', long = "out", value_name = "OUT_DIR")]
    pub out: PathBuf,
    /// Passes over the training pairs.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub epochs: u32,
    /// Pairs per training batch (each batch's pairs are each other's negatives).
    #[arg(long = "batch-size", default_value_t = 128, value_parser = clap::value_parser!(u32).range(2..=65536))]
    pub batch_size: u32,
    /// Peak learning rate (AdamW).
    #[arg(long = "lr", default_value_t = 1e-3)]
    pub learning_rate: f64,
    /// Share of the steps spent warming the learning rate up from 0 (then cosine decay).
    #[arg(long, default_value_t = 0.1)]
    pub warmup: f64,
    /// AdamW's decoupled weight decay of the projections (logit_scale is not decayed).
    #[arg(long = "weight-decay", default_value_t = 0.1)]
    pub weight_decay: f64,
    /// Share of the pairs held out and evaluated after each epoch (0: none).
    #[arg(long = "val", default_value_t = 0.1)]
    pub validation: f64,
    /// Seed of the held-out split and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where tower features are cached (default: .vtde-fit-cache beside OUT_DIR); a
    /// second run on the same checkpoint towers and pairs starts training at once.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Images per batch when computing tower features.
    #[arg(long = "embed-batch", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub embed_batch: u32,
    /// Threads decoding and preprocessing images while the vision tower runs (default:
    /// one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub decode_threads: Option<u32>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Checkpoint directory (config.json, model.safetensors, tokenizer and processor files).
    pub checkpoint: PathBuf,
    /// Package directory to write.
    pub out: PathBuf,
    /// Also write int8 variants of the towers (dynamic quantization, for the CPU).
    #[arg(long, value_name = "int8", value_parser = ["int8"])]
    pub quantize: Option<String>,
    /// Also write variants of the towers in these precisions (fp16: for GPU execution
    /// providers; int8: as --quantize int8). May repeat.
    #[arg(long, value_name = "fp16|int8", value_parser = parse_precision)]
    pub precision: Vec<Precision>,
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    Precision::from_name(s).ok_or_else(|| format!("`{s}` is not one of fp32, fp16, int8"))
}

/// Options for loading a package and running it.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Path to libonnxruntime (else $ORT_DYLIB_PATH, beside the executable, or the
    /// project cache filled by tools/fetch-onnxruntime.sh).
    #[arg(long, value_name = "PATH")]
    pub onnxruntime: Option<PathBuf>,
    /// Threads ONNX Runtime uses inside each operator (default: all cores; 1 to 256:
    /// ONNX Runtime starts that many threads per session, and thousands keep it from
    /// exiting).
    #[arg(long, visible_alias = "intra-op-threads", value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub threads: Option<usize>,
    /// Threads running independent operators at once; more than 1 turns on ONNX
    /// Runtime's parallel executor (default: 1, sequential, best for these graphs; 1 to
    /// 64: each one slows every run down, and thousands hang ONNX Runtime).
    #[arg(long = "inter-op-threads", value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub inter_op_threads: Option<usize>,
    /// Precision of the tower graphs to run; the package must carry that variant.
    #[arg(long = "run-precision", value_name = "fp32|fp16|int8", default_value = "fp32", value_parser = parse_precision)]
    pub precision: Precision,
    /// ONNX Runtime's graph optimization level.
    #[arg(long = "optimization", value_enum, default_value_t = Optimization::All)]
    pub optimization: Optimization,
    /// Turn off ONNX Runtime's CPU memory arena (and memory-pattern planning): less
    /// memory held between runs, slightly slower runs.
    #[arg(long = "no-memory-arena")]
    pub no_memory_arena: bool,
    /// Let idle ONNX Runtime threads busy-wait a moment for the next operator before they
    /// sleep (ONNX Runtime's own default; off in vtde: measured slower end to end on
    /// folders, where decoding needs the cores between batches, and no faster on single
    /// queries; see docs/performance.md).
    #[arg(long)]
    pub spin: bool,
    /// Give each graph's session a thread pool of its own instead of the one
    /// process-wide pool all graphs share (the default; see docs/performance.md).
    #[arg(long = "own-thread-pools")]
    pub own_thread_pools: bool,
    /// Execution provider to run the graphs on; repeat for an order of preference
    /// (`--provider tensorrt --provider cuda`). Default: cpu. A provider that cannot
    /// start is an error (exit 2) naming the graph, the provider and the cause, unless
    /// `cpu` is listed too or --allow-cpu-fallback is given.
    #[arg(long = "provider", value_enum, value_name = "PROVIDER")]
    pub providers: Vec<ProviderName>,
    /// The GPU for CUDA and TensorRT (0: the first).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u16))]
    pub device: u16,
    /// Run on the CPU when a provider asked for cannot start, with a warning naming what
    /// fell back; also allow heavy operators (MatMul, attention, layer norm, Conv) that
    /// ONNX Runtime places on the CPU beside a GPU provider, which is otherwise an error.
    #[arg(long)]
    pub allow_cpu_fallback: bool,
    /// TensorRT: let it run layers in fp16 (the default).
    #[arg(long, overrides_with = "no_trt_fp16")]
    pub trt_fp16: bool,
    /// TensorRT: build fp32 engines only.
    #[arg(long = "no-trt-fp16", overrides_with = "trt_fp16")]
    pub no_trt_fp16: bool,
    /// TensorRT: workspace limit in MiB (default: TensorRT's own; e.g. 2048 on 8 GB
    /// Jetsons).
    #[arg(long = "trt-workspace", value_name = "MIB")]
    pub trt_workspace: Option<usize>,
    /// TensorRT: largest batch the engines accept (default: 32, or the batch size when
    /// larger); the batch size is the engines' optimum.
    #[arg(long = "max-batch", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_batch: Option<u32>,
    /// TensorRT: no engine or timing cache (engines are then rebuilt at every start).
    #[arg(long = "no-trt-cache")]
    pub no_trt_cache: bool,
    /// CoreML: the compute units it may use.
    #[arg(long = "coreml-units", value_enum, default_value_t = CoreMlUnits::All)]
    pub coreml_units: CoreMlUnits,
    /// CoreML: the model format (mlprogram needs macOS 12 or later).
    #[arg(long = "coreml-format", value_enum, default_value_t = CoreMlFormat::Mlprogram)]
    pub coreml_format: CoreMlFormat,
}

/// Execution providers, as the CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderName {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// NVIDIA CUDA (needs the GPU build of ONNX Runtime: tools/fetch-onnxruntime.sh --gpu).
    Cuda,
    /// NVIDIA TensorRT, with CUDA for what TensorRT does not take.
    Tensorrt,
    /// Apple CoreML (macOS).
    Coreml,
}

/// CoreML compute units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CoreMlUnits {
    /// CPU, GPU and Neural Engine.
    All,
    /// CPU and GPU.
    CpuGpu,
    /// CPU and Neural Engine.
    CpuNe,
    /// CPU only.
    Cpu,
}

/// CoreML model formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CoreMlFormat {
    /// ML Program (macOS 12+): fp16 on GPU and Neural Engine, more operators.
    Mlprogram,
    /// The older NeuralNetwork format.
    Neuralnetwork,
}

/// `vtde info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Package directory made by `vtde export`.
    pub package: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `vtde warmup`.
#[derive(Debug, Args)]
pub struct WarmupArgs {
    /// Package directory made by `vtde export`.
    pub package: PathBuf,
    /// The batch size the deployment runs at (the TensorRT engines' optimum).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// ONNX Runtime graph optimization levels, as the CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Optimization {
    /// No graph rewrites.
    Disable,
    /// Constant folding and redundant-node removal.
    Basic,
    /// Basic plus fusions (GELU, layer norm, attention where recognised).
    Extended,
    /// Everything, including CPU layout optimizations.
    All,
}

/// Which files to read: paths on the command line, folders walked recursively.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Image files, or directories walked recursively (sorted, depth first). Files named
    /// here are always read, whatever their extension.
    #[arg(required = true, value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
    /// File extensions read when walking directories (case-insensitive).
    #[arg(
        long = "ext",
        value_name = "EXT,...",
        value_delimiter = ',',
        default_value = "jpg,jpeg,png,webp,gif,bmp,tif,tiff"
    )]
    pub extensions: Vec<String>,
    /// Also read hidden files and folders (names starting with `.`).
    #[arg(long)]
    pub hidden: bool,
    /// Follow symbolic links to directories (each directory is visited once, so links
    /// that loop are safe). Symlinked files are always read.
    #[arg(long)]
    pub follow_links: bool,
    /// Process only shard K of N (0 <= K < N): a file belongs to shard
    /// FNV-1a-64(its path relative to the PATHS argument it was found under) mod N. Run
    /// N processes with K = 0..N-1 and join their outputs with `vtde merge`.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

/// `--shard K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let err = || format!("`{s}` is not K/N with 0 <= K < N (e.g. 0/4)");
    let (k, n) = s.split_once('/').ok_or_else(err)?;
    let index: u64 = k.trim().parse().map_err(|_| err())?;
    let count: u64 = n.trim().parse().map_err(|_| err())?;
    if count == 0 || index >= count {
        return Err(err());
    }
    Ok(Shard { index, count })
}

/// How images are decoded and batched.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Images per inference batch.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// Threads decoding and preprocessing images while the model runs (default: one per
    /// core; they sleep when they are ahead of the model).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub decode_threads: Option<u32>,
    /// Decode at the same scheduling priority as the model instead of a lower one (the
    /// default lowers it so that the model's threads get the cores first; Linux only).
    #[arg(long = "normal-priority-decoding")]
    pub normal_priority_decoding: bool,
    /// Turn images upright as their EXIF orientation tag says, as photo viewers and
    /// phones show them (the default).
    #[arg(long, overrides_with = "no_exif_orientation")]
    pub exif_orientation: bool,
    /// Ignore EXIF orientation: pixels as stored, as `PIL.Image.open` and so
    /// transformers' image processors see them (embeddings identical to transformers' on
    /// rotated phone photos too).
    #[arg(long = "no-exif-orientation", overrides_with = "exif_orientation")]
    pub no_exif_orientation: bool,
    /// Decode large JPEGs at 1/2, 1/4 or 1/8 size in the DCT domain when the model's
    /// input is at most half their size: several times faster on 12-megapixel photos,
    /// not bit-exact with PIL (embedding cosine about 0.999).
    #[arg(long)]
    pub fast_jpeg: bool,
    /// Refuse images larger than this many pixels (decompression bombs), from their
    /// header, before decoding (default: PIL's limit, 178956970).
    #[arg(long, value_name = "PIXELS")]
    pub max_pixels: Option<u64>,
}

impl PipelineArgs {
    /// Whether EXIF orientation is applied: yes unless `--no-exif-orientation` (the
    /// last of the two flags wins).
    pub fn exif_orientation(&self) -> bool {
        !self.no_exif_orientation
    }
}

/// Where results go and whether an interrupted run is continued.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write results to FILE instead of stdout, with FILE.progress.json (the commit
    /// marker that --resume reads) beside it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format (default: jsonl when FILE ends in .jsonl or .ndjson, else csv).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where failed files are listed, path and reason, in the output format (default:
    /// FILE.errors.csv or FILE.errors.jsonl with -o; only stderr without -o).
    #[arg(long, value_name = "FILE")]
    pub errors: Option<PathBuf>,
    /// Continue the run that wrote FILE (-o): files already in it or in its errors file
    /// are skipped, an unfinished last record is dropped. Starts afresh when there is
    /// nothing to continue.
    #[arg(long, requires = "output")]
    pub resume: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated values with a header line (RFC 4180 quoting).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("label_source").required(true).args(["labels", "labels_file"])))]
pub struct ScoreArgs {
    /// Package directory made by `vtde export`.
    pub package: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// The candidate labels, e.g. --labels "a cat" "a dog".
    #[arg(long, num_args = 1..)]
    pub labels: Vec<String>,
    /// A file with one label per line (blank lines are skipped).
    #[arg(long, value_name = "FILE")]
    pub labels_file: Option<PathBuf>,
    /// Prompt template with `{}` for the label, e.g. "a photo of a {}". May repeat: the
    /// label's text embedding is then the mean of the templates' normalized embeddings,
    /// normalized again (as CLIP's zero-shot evaluation does).
    #[arg(long, value_name = "TEMPLATE")]
    pub template: Vec<String>,
    /// Write only the K most probable labels of each image, most probable first.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub top_k: Option<u32>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Benchmark aid (tools/bench_folder.py): preprocess the first batch once, then run
    /// the model and scoring on it as many times as the files would need, and print the
    /// throughput. Writes no results.
    #[arg(long, hide = true)]
    pub model_only: bool,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Package directory made by `vtde export`.
    pub package: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// Directory to write: embeddings.npy, index.jsonl, errors.jsonl and meta.json (the
    /// commit marker that --resume and `vtde search` read).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Continue the run that wrote DIR: images already embedded or failed are skipped.
    /// Starts afresh when there is nothing to continue.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct EmbedTextArgs {
    /// Package directory made by `vtde export`.
    pub package: PathBuf,
    /// A UTF-8 file with one text per line (blank lines are skipped).
    #[arg(long, value_name = "FILE")]
    pub texts_file: PathBuf,
    /// Directory to write: embeddings.npy, index.jsonl and meta.json.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Continue the run that wrote DIR: texts already embedded are skipped.
    #[arg(long)]
    pub resume: bool,
    /// Texts per inference batch (each batch is padded to its longest text).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("query_source").required(true).args(["query", "image"])))]
pub struct SearchArgs {
    /// Embeddings directory written by `vtde embed`, `vtde embed-text` or `vtde merge`.
    pub dir: PathBuf,
    /// The text to search for.
    pub query: Option<String>,
    /// Search with this image instead of a text.
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// How many results.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub top: u32,
    /// The package to embed the query with (default: the one recorded in DIR/meta.json).
    /// It must be the package the embeddings were made with (same vtde.json).
    #[arg(long, value_name = "DIR")]
    pub package: Option<PathBuf>,
    /// Write results to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format (default: jsonl when FILE ends in .jsonl or .ndjson, else csv).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard outputs: score result files (each with its FILE.progress.json) or
    /// embeddings directories, all from the same command with --shard 0/N .. N-1/N.
    #[arg(required = true, value_name = "SHARD_OUTPUTS")]
    pub inputs: Vec<PathBuf>,
    /// The merged result file (score) or directory (embed).
    #[arg(short, long, value_name = "FILE|DIR")]
    pub output: PathBuf,
    /// Merge even when shards are missing or unfinished (the result is then partial).
    #[arg(long)]
    pub allow_incomplete: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Throughput of a package's graphs at several batch sizes and sequence lengths, next
    /// to torch eager and torch.onnx.export + onnxruntime on the same checkpoint.
    Model(BenchModelArgs),
    /// Image decoding and preprocessing per image, next to PIL + transformers' processors.
    Preprocess(BenchPreprocessArgs),
    /// Resident memory over many runs of all three graphs: the peak against the bound of
    /// docs/design.md (1.5 × the graphs' bytes plus one batch), and growth per run (leak
    /// check).
    Memory(BenchMemoryArgs),
    /// A folder run end to end, next to the model alone and the decoding pool alone, in
    /// interleaved rounds: where the time of `vtde score` goes on this machine.
    Folder(BenchFolderArgs),
}

#[derive(Debug, Args)]
pub struct BenchFolderArgs {
    /// Package directory made by `vtde export`.
    pub package: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// Rounds: in each, every measurement is made once, in turn.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct BenchMemoryArgs {
    /// Package directory to measure.
    pub package: PathBuf,
    /// Runs of vision, text and projection graphs.
    #[arg(long, default_value_t = 10_000)]
    pub runs: usize,
    /// Images and texts per run.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Tokens per text.
    #[arg(long, default_value_t = 16)]
    pub seq_len: usize,
    /// Resident memory is sampled this many times over the runs.
    #[arg(long, default_value_t = 20)]
    pub samples: usize,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct BenchModelArgs {
    /// Package directory to measure.
    pub package: PathBuf,
    /// The checkpoint the package was exported from: runs the Python baselines on it.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Python of the reference environment (`tools/reference-env.sh`) for the baselines.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Image batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batch_sizes: Vec<usize>,
    /// Text lengths in tokens (at batch 32).
    #[arg(long, value_delimiter = ',', default_value = "16,77")]
    pub seq_lens: Vec<usize>,
    /// Timed runs per measurement (its median is taken).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Rounds: in each, every shape is measured by every engine in turn (see
    /// `vtde bench model --help`'s description: ratios of neighbouring measurements).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Precisions to measure (variants the package carries).
    #[arg(long, value_delimiter = ',', default_value = "fp32", value_parser = parse_precision)]
    pub precisions: Vec<Precision>,
    /// Times the package is opened (the first fills the checksum cache; the median of
    /// the others is reported too).
    #[arg(long, default_value_t = 4)]
    pub open_repeats: usize,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct BenchPreprocessArgs {
    /// Package whose image preprocessing is measured.
    pub package: PathBuf,
    /// Image files to measure on (default: generated from the test photos).
    pub images: Vec<PathBuf>,
    /// Python of the reference environment (`tools/reference-env.sh`) for the baseline.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Timed passes over the images (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}
