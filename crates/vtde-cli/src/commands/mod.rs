//! One module per subcommand, each a `run` that reads: settings ([`crate::settings`]),
//! then the model and the inputs, then the output ([`crate::formats`]). Commands share
//! what is here ([`Outcome`], [`open_model`]) and never import each other.

pub mod bench;
pub mod compose;
pub mod embed;
pub mod embed_text;
pub mod export;
pub mod fit;
pub mod info;
pub mod merge;
pub mod score;
pub mod search;
pub mod warmup;

use std::path::Path;

use anyhow::{Context, Result};
use vtde_runtime::{Model, RuntimeOptions};

/// What a command reports when it finished: whether some inputs failed.
pub enum Outcome {
    AllGood,
    SomeInputsFailed,
}

impl Outcome {
    /// The outcome of a run in which `failed` inputs failed.
    pub fn of_failures(failed: u64) -> Self {
        if failed == 0 {
            Outcome::AllGood
        } else {
            Outcome::SomeInputsFailed
        }
    }
}

/// Testing aid: the environment variable `VTDE_TEST_BATCH_DELAY_MS` makes a folder run
/// sleep that long before each batch, so that tests can kill a run midway reliably.
pub fn test_batch_delay() -> impl Fn() {
    let delay = std::env::var("VTDE_TEST_BATCH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    move || {
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
    }
}

/// Opens a package, and warns once on stderr about each graph that fell back to the CPU
/// (only possible with `--allow-cpu-fallback` or `--provider cpu` in the list) or runs
/// heavy operators on the CPU beside a GPU provider.
pub fn open_model(package: &Path, options: &RuntimeOptions) -> Result<Model> {
    let model = Model::open(package, options)
        .with_context(|| format!("opening package {}", package.display()))?;
    // One warning for what fell back: the graphs usually share the reason.
    let mut fallbacks: Vec<(&str, Vec<String>)> = Vec::new();
    for placement in model.placements() {
        if let Some(why) = &placement.fallback {
            let graph = placement.graph.name().to_owned();
            match fallbacks.iter_mut().find(|(w, _)| w == why) {
                Some((_, graphs)) => graphs.push(graph),
                None => fallbacks.push((why, vec![graph])),
            }
        }
    }
    for (why, graphs) in fallbacks {
        eprintln!(
            "vtde: warning: the {} graph{} fell back to the CPU: {why}",
            graphs.join(", "),
            if graphs.len() > 1 { "s" } else { "" }
        );
    }
    for placement in model.placements() {
        let heavy = placement.heavy_cpu_nodes();
        if !heavy.is_empty() {
            eprintln!(
                "vtde: warning: the {} runs {} heavy operators on the CPU beside {}: {}",
                placement.graph,
                heavy.len(),
                placement.provider,
                heavy.join(", ")
            );
        }
    }
    Ok(model)
}
