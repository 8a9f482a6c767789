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
        Command::Compose(a) => commands::compose::run(a).map(|()| Outcome::AllGood),
        Command::Fit(a) => commands::fit::run(a).map(|()| Outcome::AllGood),
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
                eprintln!("vtde: error: {}", one_line(&e));
                ExitCode::from(2)
            }
        },
    }
}

/// The error and its causes, joined with `: ` as `{:#}` joins them, but each text once:
/// errors that already end with their cause's text (the runtime's `cannot read {path}:
/// {source}`) would otherwise print it twice.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read x.json: {}", self.0)
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Wrapper(io)).context("opening package p");
        assert_eq!(
            one_line(&e),
            "opening package p: cannot read x.json: no such file"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }
}
