//! `vtde bench preprocess`: decoding and preprocessing against PIL + transformers.

use anyhow::{bail, Result};

use crate::args::BenchPreprocessArgs;

pub fn run(_args: &BenchPreprocessArgs) -> Result<()> {
    bail!("`vtde bench preprocess` is not implemented yet")
}
