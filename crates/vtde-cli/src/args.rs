//! Every command-line flag of `vtde`, parsed in this one place (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Checkpoint directory (config.json, model.safetensors, tokenizer and processor files).
    pub checkpoint: PathBuf,
    /// Package directory to write.
    pub out: PathBuf,
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
