//! `vtde`: the command-line tool. A thin layer over `vtde-export`, `vtde-runtime` and
//! `vtde-bench`, in layers, each importing only the ones below it:
//!
//! - [`args`]: every flag (clap definitions), nothing else.
//! - [`settings`]: the flags turned, once, into each command's settings (runtime
//!   options, image reading, decoding pool, output format, labels and templates, inputs,
//!   output paths), with the checks clap cannot make.
//! - [`commands`]: one module per subcommand, each a short `run`: settings → model and
//!   inputs → output. Commands share [`commands::Outcome`] and never import each other.
//! - [`formats`]: the files vtde writes and reads back: score results files, embeddings
//!   directories, and their building blocks (records, `.npy`, the commit journal).
//! - [`inputs`] (which files, which shard, how they are read, why one failed) and
//!   [`progress`] (what the person watching sees).
//!
//! The library does the work: `vtde-runtime` streams image files through its decoding
//! pool (`Model::stream_image_files`) and embeds labels with prompt templates
//! (`Model::embed_labels`); the commands own flags, walking folders, output formats,
//! journaling and progress.
//!
//! Exit codes: 0 all went well; 1 some input files failed (each reported on stderr and
//! in the errors file) and the rest were processed; 2 usage, model, ONNX Runtime or
//! output errors (clap's usage errors exit 2 as well); 130 and 143 when SIGINT or SIGTERM
//! stopped a run that writes outputs, after it committed the batch in hand
//! ([`interrupt`]).

mod args;
mod commands;
mod formats;
mod inputs;
mod interrupt;
mod progress;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use commands::Outcome;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Score(_) | Command::Embed(_) | Command::EmbedText(_)
    ) {
        interrupt::install();
    }
    let result = match &cli.command {
        Command::Export(a) => commands::export::run(a).map(|()| Outcome::AllGood),
        Command::Info(a) => commands::info::run(a).map(|()| Outcome::AllGood),
        Command::Warmup(a) => commands::warmup::run(a).map(|()| Outcome::AllGood),
        Command::Score(a) => commands::score::run(a),
        Command::Embed(a) => commands::embed::run(a),
        Command::EmbedText(a) => commands::embed_text::run(a),
        Command::Search(a) => commands::search::run(a),
        Command::Merge(a) => commands::merge::run(a),
        Command::Bench(b) => commands::bench::run(b).map(|()| Outcome::AllGood),
    };
    match result {
        Ok(Outcome::AllGood) => ExitCode::SUCCESS,
        Ok(Outcome::SomeInputsFailed) => ExitCode::from(1),
        Err(e) => match e.downcast_ref::<interrupt::Interrupted>() {
            Some(stop) => {
                eprintln!("vtde: {stop}");
                ExitCode::from(stop.exit_code())
            }
            None => {
                eprintln!("vtde: error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}
