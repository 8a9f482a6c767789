//! `vtde search DIR "query" --top N`: the rows of an embeddings directory closest to a
//! text (or, with `--image FILE`, to an image), by cosine similarity.
//!
//! The query is embedded with the package recorded in `DIR/meta.json` (or `--package`),
//! which must be the one that made the embeddings: its `vtde.json` sha256 is checked.
//! The `.npy` file is streamed in blocks, keeping only the best N, so the directory may be
//! larger than memory. Only committed rows are searched (a run still writing, or killed,
//! is searched as far as it got); a directory whose `.npy` header or `index.jsonl` does
//! not hold the rows `meta.json` commits, as wide as it says, is refused. The `-o` file
//! is locked while it is written, and may not be one of the directory's files, the query
//! image or a file of the package.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use anyhow::{bail, Context, Result};

use crate::args::{Format, SearchArgs};
use crate::commands::{open_model, Outcome};
use crate::formats::embeddings_dir::{
    marker_path, open_rows, read_committed, EmbedSettings, EMBEDDINGS, ERRORS, INDEX, META,
};
use crate::formats::exclusive::{is_special, Outputs};
use crate::formats::journal::{package_identity, AppendFile, Marker};
use crate::formats::npy::read_rows;
use crate::formats::paths;
use crate::formats::records::{csv_field, json_f32, json_string};
use crate::settings::{self, Query};

/// Rows read at a time.
const BLOCK_ROWS: usize = 4096;

/// A similarity that orders totally (NaN, from an all-zero embedding, ranks last).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sim(f32);

impl Eq for Sim {}

impl PartialOrd for Sim {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sim {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |x: f32| if x.is_nan() { f32::NEG_INFINITY } else { x };
        key(self.0).total_cmp(&key(other.0))
    }
}

pub fn run(args: &SearchArgs) -> Result<Outcome> {
    let settings = settings::Search::from_args(args)?;
    let dir = &settings.dir;
    let marker = Marker::read(&marker_path(dir))?.with_context(|| {
        format!(
            "{} is not an embeddings directory (no {META}); make one with `vtde embed`",
            dir.display()
        )
    })?;
    let recorded = EmbedSettings::of(&marker.run)?;
    let package = settings
        .package
        .clone()
        .unwrap_or_else(|| paths::decode(&marker.run.package));
    let (_, sha) = package_identity(&package)?;
    if sha != marker.run.package_sha256 {
        bail!(
            "the embeddings in {} were made with another package ({}); give that one with \
             --package",
            dir.display(),
            marker.run.package
        );
    }
    if let Some(output) = settings.output.as_deref().filter(|o| !is_special(o)) {
        let mut outputs = Outputs::new();
        outputs.add("the results file (-o)", output)?;
        for name in [EMBEDDINGS, INDEX, ERRORS, META] {
            outputs.input("a file of the embeddings directory", &dir.join(name))?;
        }
        if let Query::Image(image) = &settings.query {
            outputs.input("the query image", image)?;
        }
        outputs.package(&package)?;
    }
    // A query image is read as the embedded images were.
    let runtime = settings
        .runtime
        .clone()
        .with_image_options(recorded.reading.clone().unwrap_or_default().options());
    let model = open_model(&package, &runtime)?;
    let query = match &settings.query {
        Query::Image(image) => {
            let found = model.embed_image_files(std::slice::from_ref(image))?;
            if let Some(Err(e)) = found.outcomes.into_iter().next() {
                return Err(e).context("reading the query image");
            }
            Ok(found.embeddings)
        }
        Query::Text(text) => model.embed_texts(&[text]),
    }
    .context("embedding the query")?;
    let query = query.row(0).to_vec();
    if query.len() != recorded.dim {
        bail!(
            "the query embedding has {} values, the rows {}",
            query.len(),
            recorded.dim
        );
    }

    let committed = read_committed(dir, &marker, recorded.kind)?;
    let npy_path = dir.join(EMBEDDINGS);
    let (mut file, info) = open_rows(dir)?;
    let rows = committed.keys.len();
    let top = settings.top;
    let mut best: BinaryHeap<Reverse<(Sim, Reverse<usize>)>> = BinaryHeap::new();
    let mut start = 0;
    while start < rows {
        let n = BLOCK_ROWS.min(rows - start);
        let block = read_rows(&mut file, &info, start as u64, n)
            .with_context(|| format!("reading {}", npy_path.display()))?;
        for (i, row) in block.chunks_exact(info.cols).enumerate() {
            let sim: f32 = row.iter().zip(&query).map(|(a, b)| a * b).sum();
            // Ties rank the earlier row first.
            best.push(Reverse((Sim(sim), Reverse(start + i))));
            if best.len() > top {
                best.pop();
            }
        }
        start += n;
    }
    let mut ranked: Vec<(f32, usize)> = best
        .into_iter()
        .map(|Reverse((Sim(s), Reverse(i)))| (s, i))
        .collect();
    ranked.sort_by(|a, b| Sim(b.0).cmp(&Sim(a.0)).then(a.1.cmp(&b.1)));

    let format = settings.format;
    let key = recorded.kind.key();
    let mut text = String::new();
    if format == Format::Csv {
        text.push_str(&format!("rank,score,{key}\n"));
    }
    for (rank, (sim, row)) in ranked.iter().enumerate() {
        let item = &committed.keys[*row];
        match format {
            Format::Csv => text.push_str(&format!("{},{sim:.6},{}\n", rank + 1, csv_field(item))),
            Format::Jsonl => text.push_str(&format!(
                "{{\"rank\":{},\"score\":{},\"{key}\":{}}}\n",
                rank + 1,
                json_f32(*sim),
                json_string(item)
            )),
        }
    }
    match &settings.output {
        Some(path) => {
            // Locked, then written afresh (a device such as /dev/null is just written).
            let mut file = AppendFile::open(path)?;
            file.cut(0)?;
            file.push(&text);
            file.flush()?;
            file.sync()?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("writing to stdout")?;
        }
    }
    Ok(Outcome::AllGood)
}
