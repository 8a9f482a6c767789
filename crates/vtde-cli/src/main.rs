//! `vtde`: the command-line tool. A thin layer over `vtde-export` and `vtde-runtime`:
//! flags are parsed in [`args`], each subcommand lives in [`commands`]. Folder runs are
//! built from [`inputs`] (which files, which shard), [`pipeline`] (decoding threads),
//! [`records`], [`journal`] and [`npy`] (crash-safe outputs) and [`progress`].
//!
//! Exit codes: 0 all went well; 1 some input files failed (each reported on stderr and
//! in the errors file) and the rest were processed; 2 usage, model, ONNX Runtime or
//! output errors (clap's usage errors exit 2 as well).

mod args;
mod commands;
mod inputs;
mod journal;
mod npy;
mod pipeline;
mod progress;
mod records;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// What a command reports when it finished: whether some inputs failed.
pub enum Outcome {
    AllGood,
    SomeInputsFailed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Export(a) => commands::export::run(a).map(|()| Outcome::AllGood),
        Command::Score(a) => commands::score::run(a),
        Command::Embed(a) => commands::embed::run(a),
        Command::EmbedText(a) => commands::embed::run_text(a),
        Command::Search(a) => commands::search::run(a),
        Command::Merge(a) => commands::merge::run(a),
        Command::Bench(b) => commands::bench::run(b).map(|()| Outcome::AllGood),
    };
    match result {
        Ok(Outcome::AllGood) => ExitCode::SUCCESS,
        Ok(Outcome::SomeInputsFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vtde: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
