//! One module per subcommand, each a `run` that reads: settings ([`crate::settings`]),
//! then the model and the inputs, then the output ([`crate::formats`]). Commands share
//! what is here ([`Outcome`], [`open_model`]) and never import each other.

pub mod bench;
pub mod embed;
pub mod embed_text;
pub mod export;
pub mod merge;
pub mod score;
pub mod search;

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

/// Opens a package.
pub fn open_model(package: &Path, options: &RuntimeOptions) -> Result<Model> {
    Model::open(package, options).with_context(|| format!("opening package {}", package.display()))
}
