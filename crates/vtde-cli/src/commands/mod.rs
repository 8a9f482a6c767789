//! One module per subcommand, and what they share.

pub mod bench;
pub mod export;
pub mod score;

use std::path::Path;

use anyhow::{Context, Result};
use vtde_runtime::{Model, RuntimeOptions};

use crate::args::RuntimeArgs;

/// Opens a package with the runtime flags of the command line.
pub fn open_model(package: &Path, args: &RuntimeArgs) -> Result<Model> {
    let options = RuntimeOptions {
        onnxruntime_library: args.onnxruntime.clone(),
        intra_op_threads: args.threads,
        precision: args.precision,
        ..RuntimeOptions::default()
    };
    Model::open(package, &options).with_context(|| format!("opening package {}", package.display()))
}
