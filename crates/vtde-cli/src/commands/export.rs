//! `vtde export CHECKPOINT OUT`: checkpoint directory → package directory.

use anyhow::{Context, Result};

use vtde_runtime::manifest::Precision;

use crate::args::ExportArgs;

pub fn run(args: &ExportArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let mut variants = args.precision.clone();
    if args.quantize.is_some() {
        variants.push(Precision::Int8);
    }
    variants.sort_by_key(|p| p.name());
    variants.dedup();
    let options = vtde_export::ExportOptions { variants };
    let exported = vtde_export::export_with(&args.checkpoint, &args.out, &options, &mut |step| {
        eprintln!("vtde export: {step}");
    })
    .with_context(|| {
        format!(
            "exporting {} to {}",
            args.checkpoint.display(),
            args.out.display()
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
