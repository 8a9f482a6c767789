//! `vtde export CHECKPOINT OUT`: checkpoint directory → package directory.

use anyhow::{Context, Result};

use crate::args::ExportArgs;
use crate::settings;

pub fn run(args: &ExportArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let settings = settings::Export::from_args(args);
    let exported = vtde_export::export_with(
        &settings.checkpoint,
        &settings.out,
        &settings.options,
        &mut |step| {
            eprintln!("vtde export: {step}");
        },
    )
    .with_context(|| {
        format!(
            "exporting {} to {}",
            settings.checkpoint.display(),
            settings.out.display()
        )
    })?;
    let m = &exported.manifest;
    eprintln!(
        "vtde export: wrote {} ({} + {}, projection {}) in {:.1}s",
        exported.dir.display(),
        m.source.vision_model_type,
        m.source.text_model_type,
        m.projection_dim,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
