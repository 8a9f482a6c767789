//! What a folder run tells the person watching: a progress bar with rate and ETA when
//! stderr is a terminal (nothing otherwise), one stderr line per failed file, and a final
//! summary line. The summary counts what the outputs committed: items of a batch count
//! once the batch is committed ([`Reporter::committed`]), so a run that fails or is
//! stopped midway reports what `--resume` will find.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts and the bar of one run.
pub struct Reporter {
    command: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    /// Items written in this run, committed.
    pub done: u64,
    /// Items that failed in this run, committed.
    pub failed: u64,
    /// Items written, and items failed, in the batch not yet committed.
    pending_done: u64,
    pending_failed: u64,
    /// Items skipped because an earlier run did them (`--resume`).
    pub skipped: u64,
    /// Of those, the ones that had failed.
    pub failed_before: u64,
}

impl Reporter {
    /// A reporter for `total` items to process in this run.
    pub fn new(command: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{elapsed_precise} {wide_bar} {pos}/{len} {rate} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", state.per_sec());
                },
            );
            bar.set_style(style);
            bar
        });
        Reporter {
            command,
            bar,
            started: Instant::now(),
            done: 0,
            failed: 0,
            pending_done: 0,
            pending_failed: 0,
            skipped: 0,
            failed_before: 0,
        }
    }

    /// Prints a line on stderr without breaking the bar.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Reports a failed item (counted once committed).
    pub fn fail(&mut self, path: &str, reason: &str) {
        self.pending_failed += 1;
        self.note(&format!("vtde: skipping {path}: {reason}"));
        self.advance(1);
    }

    /// Counts written items (once committed).
    pub fn wrote(&mut self, n: u64) {
        self.pending_done += n;
        self.advance(n);
    }

    /// The outputs committed what was written and failed so far: count it.
    pub fn committed(&mut self) {
        self.done += std::mem::take(&mut self.pending_done);
        self.failed += std::mem::take(&mut self.pending_failed);
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Items written by all runs that wrote these outputs, the batch not yet committed
    /// included (what the next commit records; `skipped` counts the earlier runs' items
    /// and failures).
    pub fn done_total(&self) -> u64 {
        self.done + self.pending_done + self.skipped - self.failed_before
    }

    /// Failed items in all runs that wrote these outputs, the batch not yet committed
    /// included.
    pub fn failed_total(&self) -> u64 {
        self.failed + self.pending_failed + self.failed_before
    }

    /// Removes the bar and prints the summary line: committed items only.
    pub fn finish(&self, verb: &str, unit: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        let mut line = format!(
            "vtde {}: {} {verb}, {} skipped (done before), {} failed",
            self.command, self.done, self.skipped, self.failed
        );
        if self.failed_before > 0 {
            line.push_str(&format!(" (+{} earlier)", self.failed_before));
        }
        line.push_str(&format!(", {secs:.2}s, {rate:.1} {unit}/s"));
        eprintln!("{line}");
    }
}

/// A bar for work counted in steps (training steps, feature batches), with a message
/// (the loss) when stderr is a terminal; nothing otherwise.
pub struct StepBar {
    bar: Option<ProgressBar>,
}

impl StepBar {
    /// A bar for `total` steps, `unit` naming them.
    pub fn new(total: u64, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!(
                "{{elapsed_precise}} {{wide_bar}} {{pos}}/{{len}} {unit} {{msg}} ETA {{eta}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        StepBar { bar }
    }

    /// Advances by `n` steps and shows `message`.
    pub fn advance(&self, n: u64, message: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            bar.set_message(message());
        }
    }

    /// Prints a line on stderr without breaking the bar.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
