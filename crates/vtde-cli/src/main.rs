//! `vtde`: the command-line tool. A thin layer over `vtde-export` and `vtde-runtime`:
//! flags are parsed in [`args`], each subcommand lives in [`commands`].

mod args;
mod commands;
mod inputs;

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
