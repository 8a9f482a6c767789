//! `vtde bench model`: graph throughput against torch eager and torch.onnx.export.

use anyhow::{bail, Result};

use crate::args::BenchModelArgs;

pub fn run(_args: &BenchModelArgs) -> Result<()> {
    bail!("`vtde bench model` is not implemented yet")
}
