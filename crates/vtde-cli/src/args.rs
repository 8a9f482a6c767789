//! Every command-line flag of `vtde`, parsed in this one place (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vtde_runtime::manifest::Precision;

/// vtde: run CLIP-style vision-text dual encoders through ONNX Runtime, without Python.
///
/// Exit codes: 0 when everything went well, 1 when some input files failed (each is
/// reported on stderr), 2 for usage, model or ONNX Runtime errors.
#[derive(Debug, Parser)]
#[command(name = "vtde", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export a Hugging Face checkpoint directory to a vtde package.
    Export(ExportArgs),
    /// Zero-shot classify images against text labels; prints CSV to stdout.
    Score(ScoreArgs),
    /// Measure speed: the graphs of a package, or image preprocessing, against the Python
    /// baselines in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
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
    /// Threads ONNX Runtime uses inside each operator (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Precision of the tower graphs to run; the package must carry that variant.
    #[arg(long = "run-precision", value_name = "fp32|fp16|int8", default_value = "fp32", value_parser = parse_precision)]
    pub precision: Precision,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Package directory made by `vtde export`.
    pub package: PathBuf,
    /// Image files, or directories searched recursively for images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// The candidate labels, e.g. --labels "a cat" "a dog".
    #[arg(long, num_args = 1.., required = true)]
    pub labels: Vec<String>,
    /// Images per inference batch.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Throughput of a package's graphs at several batch sizes and sequence lengths, next
    /// to torch eager and torch.onnx.export + onnxruntime on the same checkpoint.
    Model(BenchModelArgs),
    /// Image decoding and preprocessing per image, next to PIL + transformers' processors.
    Preprocess(BenchPreprocessArgs),
}

#[derive(Debug, Args)]
pub struct BenchModelArgs {
    /// Package directory to measure.
    pub package: PathBuf,
    /// The checkpoint the package was exported from: runs the Python baselines on it.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Python of the reference environment (../shared/reference-env.sh) for the baselines.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Image batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batch_sizes: Vec<usize>,
    /// Text lengths in tokens (at batch 32).
    #[arg(long, value_delimiter = ',', default_value = "16,77")]
    pub seq_lens: Vec<usize>,
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Precisions to measure (variants the package carries).
    #[arg(long, value_delimiter = ',', default_value = "fp32", value_parser = parse_precision)]
    pub precisions: Vec<Precision>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct BenchPreprocessArgs {
    /// Package whose image preprocessing is measured.
    pub package: PathBuf,
    /// Image files to measure on (default: generated from the test photos).
    pub images: Vec<PathBuf>,
    /// Python of the reference environment (../shared/reference-env.sh) for the baseline.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Timed passes over the images (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}
