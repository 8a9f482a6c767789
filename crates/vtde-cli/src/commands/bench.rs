//! `vtde bench model|memory|preprocess|folder`: the flags turned into the settings of the
//! `vtde-bench` library, which measures and reports.

use anyhow::Result;

use crate::args::BenchCommand;
use crate::settings;

pub fn run(command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Model(args) => vtde_bench::model::run(&settings::bench_model(args)?),
        BenchCommand::Memory(args) => vtde_bench::memory::run(&settings::bench_memory(args)?),
        BenchCommand::Folder(args) => vtde_bench::folder::run(&settings::bench_folder(args)?),
        BenchCommand::Preprocess(args) => {
            vtde_bench::preprocess::run(&settings::bench_preprocess(args)?)
        }
    }
}
