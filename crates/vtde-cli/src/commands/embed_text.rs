//! `vtde embed-text PACKAGE --texts-file FILE -o DIR`: the lines of a text file into an
//! embeddings directory ([`crate::formats::embeddings_dir`]), in file order, a batch at
//! a time, each batch committed (so `--resume` continues a killed run, or one stopped by
//! SIGINT or SIGTERM, which commits the batch in hand). The directory is locked for the
//! run, and none of its files may be the texts file or a file of the package.

use anyhow::{bail, Context, Result};

use crate::args::EmbedTextArgs;
use crate::commands::{open_model, test_batch_delay, Outcome};
use crate::formats::embeddings_dir::{output_files, EmbedOutput, EmbedSettings};
use crate::formats::journal::RunInfo;
use crate::formats::paths;
use crate::interrupt;
use crate::progress::Reporter;
use crate::settings;

pub fn run(args: &EmbedTextArgs) -> Result<Outcome> {
    let settings = settings::EmbedText::from_args(args)?;
    let outputs = output_files(&settings.output)?;
    outputs.input("the texts file", &settings.texts_file)?;
    outputs.package(&settings.package)?;
    let texts = &settings.texts;
    let model = open_model(&settings.package, &settings.runtime)?;
    let recorded =
        EmbedSettings::texts(model.manifest().projection_dim, settings.precision.clone());
    let roots = vec![paths::encode(&settings.texts_file)];
    let run = RunInfo::new("embed-text", &settings.package, &recorded, roots, None)?;
    // A signal while the model loaded: stop before the outputs are touched.
    interrupt::check()?;
    let (mut out, prior) = EmbedOutput::open(&settings.output, run, settings.resume)?;
    // Texts are embedded in file order, so the rows done are a prefix of the texts.
    let start = prior.keys.len();
    if start > texts.len() || prior.keys[..] != texts[..start] {
        bail!(
            "cannot resume {}: its texts are not the first lines of {}; run without --resume",
            settings.output.display(),
            settings.texts_file.display()
        );
    }
    let mut reporter = Reporter::new("embed-text", (texts.len() - start) as u64);
    reporter.skipped = start as u64;
    let delay = test_batch_delay();
    let mut result = interrupt::check();
    if result.is_ok() {
        for chunk in texts[start..].chunks(settings.batch_size) {
            delay();
            result = model
                .embed_texts(chunk)
                .context("embedding texts")
                .and_then(|e| out.add(e.view(), chunk.iter().map(String::as_str)))
                .and_then(|()| {
                    reporter.wrote(chunk.len() as u64);
                    out.commit(false)
                })
                .map(|()| reporter.committed())
                // A signal stops the run here, with the batch in hand committed.
                .and_then(|()| interrupt::check());
            if result.is_err() {
                break;
            }
        }
    }
    let finished = result.and_then(|()| {
        out.commit(true)?;
        reporter.committed();
        Ok(())
    });
    reporter.finish("embedded", "texts");
    finished?;
    Ok(Outcome::AllGood)
}
