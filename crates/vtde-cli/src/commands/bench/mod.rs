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
