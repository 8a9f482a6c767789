//! One module per architecture. Each maps its transformers config and weight names
//! onto the shared pieces of [`crate::layers`] and emits one ONNX graph.

pub mod bert;
pub mod clip;
pub mod projection;
pub mod vit;

use crate::checkpoint::ConfigView;
use crate::error::Result;
use crate::layers::Activation;

/// Reads an activation name from a config, with an error that lists the supported ones.
pub(crate) fn activation(cfg: &ConfigView, key: &str, default: &str) -> Result<Activation> {
    let name = cfg.str_or(key, default)?;
    Activation::from_hf(&name).ok_or_else(|| {
        cfg.problem(
            key,
            &format!(
                "is `{name}`, which vtde does not support (supported: {})",
                Activation::SUPPORTED
            ),
        )
    })
}
