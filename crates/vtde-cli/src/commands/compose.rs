//! `vtde compose --vision DIR --text DIR -o CHECKPOINT_DIR`: two pretrained towers → a
//! `VisionTextDualEncoderModel` checkpoint with fresh projection heads (`vtde_fit::compose`).

use anyhow::{Context, Result};

use crate::args::ComposeArgs;
use crate::settings;

/// Lists at most this many dropped weights by name (a dual encoder source drops a
/// whole tower).
const LISTED: usize = 8;

pub fn run(args: &ComposeArgs) -> Result<()> {
    let settings = settings::Compose::from_args(args)?;
    let composed = vtde_fit::compose(
        &settings.vision,
        &settings.text,
        &settings.out,
        &settings.options,
    )
    .with_context(|| {
        format!(
            "composing {} and {}",
            settings.vision.display(),
            settings.text.display()
        )
    })?;
    for (side, tower) in [("vision", &composed.vision), ("text", &composed.text)] {
        eprintln!(
            "vtde compose: {side} tower {} (hidden {}) from {}: {} weights",
            tower.model_type,
            tower.hidden_size,
            tower.source.display(),
            tower.copied
        );
        if !tower.dropped.is_empty() {
            let shown: Vec<&str> = tower
                .dropped
                .iter()
                .take(LISTED)
                .map(String::as_str)
                .collect();
            let more = tower.dropped.len().saturating_sub(LISTED);
            eprintln!(
                "vtde compose:   dropped {} weights the dual encoder does not use: {}{}",
                tower.dropped.len(),
                shown.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                }
            );
        }
        if !tower.initialised.is_empty() {
            eprintln!(
                "vtde compose:   initialised (missing from the source, used by the dual encoder): {}",
                tower.initialised.join(", ")
            );
        }
    }
    eprintln!(
        "vtde compose: wrote {} ({}; projection {}, fresh heads from seed {}): fit them with `vtde fit {} --pairs PAIRS -o OUT_DIR`",
        composed.dir.display(),
        composed.files.join(", "),
        settings.options.projection_dim,
        settings.options.seed,
        composed.dir.display()
    );
    Ok(())
}
