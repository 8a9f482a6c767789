//! Speed and memory measurements of vtde packages, next to the Python baselines, in one
//! run, reported as ratios (this machine type is shared and noisy; absolute numbers
//! drift, ratios measured side by side do not).
//!
//! A library of its own, apart from the command line: each benchmark takes a plain
//! settings struct (with a [`vtde_runtime::RuntimeOptions`] where a model is opened) and
//! prints its report on stdout, progress on stderr. `vtde bench model|memory|preprocess`
//! converts its flags into these settings and calls [`model::run`], [`memory::run`],
//! [`preprocess::run`] or [`folder::run`].
//!
//! - [`model`]: throughput of a package's graphs, against torch eager and
//!   `torch.onnx.export` + onnxruntime (`tools/bench_model.py`).
//! - [`memory`]: resident memory over many runs (the bound of docs/design.md, leak check).
//! - [`folder`]: a folder run end to end against the model alone and the decoding pool
//!   alone (Rust only: where the time of `vtde score` goes on the user's machine).
//! - [`preprocess`]: image decoding and preprocessing per image, against PIL +
//!   transformers' processors (`tools/bench_preprocess.py`).

pub mod folder;
pub mod memory;
pub mod model;
pub mod preprocess;

pub use folder::FolderBenchSettings;
pub use memory::MemoryBenchSettings;
pub use model::ModelBenchSettings;
pub use preprocess::PreprocessBenchSettings;

use anyhow::Result;

/// Runs a Python baseline `command` (the script and its arguments already added) with
/// `--json-out OUT` appended, and returns the JSON the script wrote there.
pub(crate) fn run_json_script(
    mut command: std::process::Command,
    python: &std::path::Path,
    script: &std::path::Path,
    out: &std::path::Path,
) -> Result<serde_json::Value> {
    use anyhow::{bail, Context};
    let status = command
        .arg("--json-out")
        .arg(out)
        .status()
        .with_context(|| format!("running {}", python.display()))?;
    if !status.success() {
        bail!(
            "{} {} failed ({status})",
            python.display(),
            script.display()
        );
    }
    let json = serde_json::from_slice(
        &std::fs::read(out).with_context(|| format!("reading {}", out.display()))?,
    )
    .with_context(|| format!("parsing {}", out.display()))?;
    let _ = std::fs::remove_file(out);
    Ok(json)
}

/// A deterministic pseudo-random sequence (no RNG dependency needed for benchmark data).
pub(crate) fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// A memory figure of this process from /proc/self/status in MiB (`VmRSS`: resident now,
/// `VmHWM`: peak resident), where /proc has it (Linux).
pub(crate) fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `rows` texts of `seq` random token ids (from 3 up, below the vocabulary size and
/// 30000, clear of the usual special tokens), all attended, token types 0.
pub(crate) fn random_text_batch(
    model: &vtde_runtime::Model,
    rows: usize,
    seq: usize,
    seed: &mut u64,
) -> vtde_runtime::TextBatch {
    use vtde_runtime::ndarray::Array2;
    let vocab = model.tokenizer().vocab_size().max(4) as u64;
    let ids = Array2::from_shape_fn((rows, seq), |_| {
        (3 + lcg(seed) % (vocab.min(30000) - 3)) as i64
    });
    vtde_runtime::TextBatch {
        attention_mask: Array2::ones(ids.raw_dim()),
        token_type_ids: Array2::zeros(ids.raw_dim()),
        input_ids: ids,
    }
}
