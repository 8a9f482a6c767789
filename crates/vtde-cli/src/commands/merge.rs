//! `vtde merge -o OUT SHARD_OUTPUTS...`: joins the outputs of `--shard K/N` runs into
//! what one unsharded run would have written.
//!
//! Each shard's marker must come from the same command, package, settings and paths,
//! and the shards must be 0..N-1, each once, each complete (unless
//! `--allow-incomplete`). The committed records of all shards are put in the order of
//! an unsharded run ([`crate::inputs::canonical_key`]: the root a path lies under, then
//! the path component by component, which is the walk order) and copied byte for byte:
//! score results with their errors file and marker, or embeddings rows with their index.
//! Paths are ordered by their raw bytes ([`crate::formats::paths`]).
//!
//! The output may be none of the shards' files, and is locked while it is written; each
//! shard is locked shared, so a shard that a run is still writing is refused
//! ([`crate::formats::exclusive`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use vtde_runtime::ndarray::Array2;

use crate::args::MergeArgs;
use crate::commands::Outcome;
use crate::formats::embeddings_dir::{
    self, open_rows, output_files, read_committed, EmbedOutput, EmbedSettings, Kind, EMBEDDINGS,
    ERRORS, INDEX, META,
};
use crate::formats::exclusive::{is_special, lock_shared, Outputs};
use crate::formats::journal::{
    read_prefix, remove_stale_temporaries, AppendFile, Commit, Marker, RunInfo, MARKER_VERSION,
};
use crate::formats::npy::read_rows;
use crate::formats::paths;
use crate::formats::records::{error_header, scan};
use crate::formats::score_file::{self, default_errors_path, ScoreSettings};
use crate::inputs::canonical_key;
use crate::settings;

/// Rows copied per batch when merging embeddings.
const COPY_ROWS: usize = 1024;

pub fn run(args: &MergeArgs) -> Result<Outcome> {
    let settings = settings::Merge::from_args(args);
    if is_special(&settings.output) {
        bail!(
            "{} is not a regular file: merge writes a results file or an embeddings \
             directory, with its marker",
            settings.output.display()
        );
    }
    let dirs = settings.inputs.iter().filter(|p| p.is_dir()).count();
    let (markers, embeddings) = if dirs == settings.inputs.len() {
        (
            read_markers(&settings.inputs, embeddings_dir::marker_path)?,
            true,
        )
    } else if dirs == 0 {
        (
            read_markers(&settings.inputs, score_file::marker_path)?,
            false,
        )
    } else {
        bail!("give either score result files or embeddings directories, not both");
    };
    let run = check_shards(&settings.inputs, &markers, settings.allow_incomplete)?;
    let _shard_locks = check_files(&settings.inputs, &settings.output, &run, embeddings)?;
    let complete = markers.iter().all(|m| m.complete);
    let shards: Vec<(&PathBuf, &Marker)> = settings.inputs.iter().zip(&markers).collect();
    let failed = if embeddings {
        merge_embeddings(&shards, run, complete, &settings.output)?
    } else {
        merge_scores(&shards, run, complete, &settings.output)?
    };
    eprintln!(
        "vtde merge: {} shards into {}{}",
        markers.len(),
        settings.output.display(),
        if complete { "" } else { " (incomplete)" }
    );
    Ok(Outcome::of_failures(failed))
}

fn read_markers(inputs: &[PathBuf], marker: impl Fn(&Path) -> PathBuf) -> Result<Vec<Marker>> {
    inputs
        .iter()
        .map(|p| {
            let path = marker(p);
            Marker::read(&path)?.with_context(|| {
                format!(
                    "{} has no marker {}: only outputs written with -o can be merged",
                    p.display(),
                    path.display()
                )
            })
        })
        .collect()
}

/// Checks that the output is none of the shards' files, and takes a shared lock on each
/// shard, so that no run writes it while it is read. Returns the locks.
fn check_files(
    inputs: &[PathBuf],
    output: &Path,
    run: &RunInfo,
    embeddings: bool,
) -> Result<Vec<Option<std::fs::File>>> {
    let format = if embeddings {
        None
    } else {
        Some(ScoreSettings::of(run)?.format)
    };
    let mut outputs = match format {
        None => output_files(output)?,
        Some(_) => Outputs::new(),
    };
    if let Some(format) = format {
        outputs.add("the merged results file (-o)", output)?;
        outputs.add("its errors file", &default_errors_path(output, format))?;
        outputs.add("its progress marker", &score_file::marker_path(output))?;
    }
    let mut locks = Vec::new();
    for shard in inputs {
        let files: Vec<PathBuf> = match format {
            None => [EMBEDDINGS, INDEX, ERRORS, META]
                .iter()
                .map(|n| shard.join(n))
                .collect(),
            Some(format) => vec![
                shard.clone(),
                default_errors_path(shard, format),
                score_file::marker_path(shard),
            ],
        };
        for file in &files {
            outputs.input("a file of a shard being merged:", file)?;
        }
        // The file a run locks: the results file, or embeddings.npy.
        locks.push(lock_shared(&files[0])?);
    }
    Ok(locks)
}

/// Checks that the markers are the shards of one run; returns that run, unsharded.
fn check_shards(inputs: &[PathBuf], markers: &[Marker], allow_incomplete: bool) -> Result<RunInfo> {
    let first = &markers[0].run;
    let Some(count) = first.shard.map(|s| s.count) else {
        bail!("{} is not the output of a --shard run", inputs[0].display());
    };
    // Markers are files: a damaged one must not size an allocation.
    if count > inputs.len() as u64 && !allow_incomplete {
        bail!(
            "{} is one of {count} shards, but {} outputs are given",
            inputs[0].display(),
            inputs.len()
        );
    }
    if count > 1 << 20 {
        bail!("{}: {count} shards is implausible", inputs[0].display());
    }
    let mut seen = vec![None; count as usize];
    for (path, marker) in inputs.iter().zip(markers) {
        if let Some(why) = first.mismatch(&marker.run, true) {
            bail!(
                "{} cannot be merged with {}: it was {why}",
                path.display(),
                inputs[0].display()
            );
        }
        let Some(shard) = marker
            .run
            .shard
            .filter(|s| s.count == count && s.index < count)
        else {
            bail!("{} is not one of {count} shards", path.display());
        };
        if let Some(other) = seen[shard.index as usize].replace(path) {
            bail!(
                "{} and {} are both shard {shard}",
                other.display(),
                path.display()
            );
        }
        if !marker.complete && !allow_incomplete {
            bail!(
                "shard {shard} ({}) is unfinished; finish it with --resume, or merge with \
                 --allow-incomplete",
                path.display()
            );
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|&k| seen[k as usize].is_none())
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() && !allow_incomplete {
        bail!(
            "shards {} are missing (or merge with --allow-incomplete)",
            missing.join(", ")
        );
    }
    Ok(RunInfo {
        shard: None,
        ..first.clone()
    })
}

/// A record to copy: its key (a path as written, or a text), where it comes from.
struct Item {
    key: String,
    shard: usize,
    start: usize,
    end: usize,
}

/// Puts items in the order of an unsharded run: by the raw bytes of their paths.
fn sort_items(items: &mut Vec<Item>, roots: &[String]) {
    let roots: Vec<PathBuf> = roots.iter().map(|r| paths::decode(r)).collect();
    let mut keyed: Vec<(PathBuf, Item)> = std::mem::take(items)
        .into_iter()
        .map(|i| (paths::decode(&i.key), i))
        .collect();
    keyed.sort_by(|a, b| canonical_key(&roots, &a.0).cmp(&canonical_key(&roots, &b.0)));
    *items = keyed.into_iter().map(|(_, i)| i).collect();
}

fn merge_scores(
    shards: &[(&PathBuf, &Marker)],
    run: RunInfo,
    complete: bool,
    output: &Path,
) -> Result<u64> {
    let settings = ScoreSettings::of(&run)?;
    let format = settings.format;
    let header = settings.records().header();
    let err_header = error_header(format);
    let mut results = Vec::new();
    let mut errors = Vec::new();
    let mut result_items = Vec::new();
    let mut error_items = Vec::new();
    for (s, (path, marker)) in shards.iter().enumerate() {
        let bytes = read_prefix(path, marker.commit.output_bytes)?;
        let found = scan(format, &bytes, header.as_deref(), "path")
            .with_context(|| format!("reading {}", path.display()))?;
        result_items.extend(found.records.into_iter().map(|r| Item {
            key: r.key,
            shard: s,
            start: r.start,
            end: r.end,
        }));
        results.push(bytes);
        // A shard's errors file is where its run put it by default.
        let err_path = default_errors_path(path, format);
        if marker.commit.errors_bytes > 0 && !err_path.is_file() {
            bail!(
                "{} is missing: merge reads each shard's errors file beside its results \
                 (runs with --errors elsewhere cannot be merged)",
                err_path.display()
            );
        }
        let err_bytes = read_prefix(&err_path, marker.commit.errors_bytes)?;
        let found = scan(format, &err_bytes, err_header.as_deref(), "path")
            .with_context(|| format!("reading {}", err_path.display()))?;
        error_items.extend(found.records.into_iter().map(|r| Item {
            key: r.key,
            shard: s,
            start: r.start,
            end: r.end,
        }));
        errors.push(err_bytes);
    }
    sort_items(&mut result_items, &run.roots);
    sort_items(&mut error_items, &run.roots);

    // Both files are locked, and the marker commits nothing, before they are cut.
    let mut out = AppendFile::open(output)?;
    let mut err_out = AppendFile::open(&default_errors_path(output, format))?;
    let marker_path = score_file::marker_path(output);
    remove_stale_temporaries(&marker_path);
    let mut marker = Marker {
        kind: score_file::MARKER_KIND.into(),
        version: MARKER_VERSION,
        run,
        commit: Commit::default(),
        complete: false,
    };
    marker.write(&marker_path)?;
    let write = |f: &mut AppendFile, header: Option<&str>, items: &[Item], sources: &[Vec<u8>]| {
        f.cut(0)?;
        if let Some(h) = header {
            f.push(h);
        }
        // Records are copied byte for byte.
        for item in items {
            f.push_bytes(&sources[item.shard][item.start..item.end]);
        }
        let len = f.flush()?;
        f.sync()?;
        Ok::<u64, anyhow::Error>(len)
    };
    let output_bytes = write(&mut out, header.as_deref(), &result_items, &results)?;
    let errors_bytes = write(&mut err_out, err_header.as_deref(), &error_items, &errors)?;
    marker.commit = Commit {
        output_bytes,
        errors_bytes,
        rows: 0,
        done: result_items.len() as u64,
        failed: error_items.len() as u64,
    };
    marker.complete = complete;
    marker.write(&marker_path)?;
    Ok(error_items.len() as u64)
}

fn merge_embeddings(
    shards: &[(&PathBuf, &Marker)],
    run: RunInfo,
    complete: bool,
    output: &Path,
) -> Result<u64> {
    let settings = EmbedSettings::of(&run)?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut error_bytes = Vec::new();
    let mut files = Vec::new();
    for (s, (dir, marker)) in shards.iter().enumerate() {
        let committed = read_committed(dir, marker, settings.kind)?;
        rows.extend(
            committed
                .keys
                .into_iter()
                .enumerate()
                .map(|(row, key)| Item {
                    key,
                    shard: s,
                    start: row,
                    end: row + 1,
                }),
        );
        failures.extend(committed.failed.into_iter().map(|r| Item {
            key: r.key,
            shard: s,
            start: r.start,
            end: r.end,
        }));
        error_bytes.push(committed.errors);
        files.push(open_rows(dir)?);
    }
    // Texts keep the order of the file; shards only exist for images.
    if settings.kind == Kind::Image {
        sort_items(&mut rows, &run.roots);
        sort_items(&mut failures, &run.roots);
    }
    let (mut out, _) = EmbedOutput::open(output, run, false)?;
    for chunk in rows.chunks(COPY_ROWS) {
        let mut block = Array2::<f32>::zeros((chunk.len(), settings.dim));
        for (item, mut row) in chunk.iter().zip(block.rows_mut()) {
            let (file, info) = &mut files[item.shard];
            let values = read_rows(file, info, item.start as u64, 1)?;
            row.assign(&vtde_runtime::ndarray::ArrayView1::from(&values[..]));
        }
        out.add(block.view(), chunk.iter().map(|i| i.key.as_str()))?;
        out.commit(false)?;
    }
    for item in &failures {
        out.error_line(&error_bytes[item.shard][item.start..item.end]);
    }
    out.commit(complete)?;
    Ok(failures.len() as u64)
}
