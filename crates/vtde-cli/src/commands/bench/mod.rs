//! `vtde bench`: speed measurements next to the Python baselines, in one run, reported
//! as ratios (this machine type is shared and noisy; absolute numbers drift, ratios
//! measured side by side do not).

pub mod model;
pub mod preprocess;

use anyhow::Result;

use crate::args::BenchCommand;

pub fn run(command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Model(args) => model::run(args),
        BenchCommand::Preprocess(args) => preprocess::run(args),
    }
}

/// Runs a Python baseline `command` (the script and its arguments already added) with
/// `--json-out OUT` appended, and returns the JSON the script wrote there.
pub fn run_json_script(
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
