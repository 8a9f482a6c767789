//! One module per subcommand, and what they share.

pub mod bench;
pub mod embed;
pub mod export;
pub mod merge;
pub mod score;
pub mod search;

use std::path::Path;

use anyhow::{bail, Context, Result};
use vtde_runtime::ndarray::{Array2, ArrayView4};
use vtde_runtime::similarity::l2_normalize;
use vtde_runtime::{ImageOptions, Model, OptimizationLevel, RuntimeOptions};

use crate::args::{Format, Optimization, PipelineArgs, RuntimeArgs};

/// Opens a package with the runtime flags of the command line.
pub fn open_model(package: &Path, args: &RuntimeArgs) -> Result<Model> {
    open_model_reading(package, args, ImageOptions::default())
}

/// Opens a package that will read image files with `image` options.
pub fn open_model_reading(
    package: &Path,
    args: &RuntimeArgs,
    image: ImageOptions,
) -> Result<Model> {
    let options = runtime_options(args, image);
    Model::open(package, &options).with_context(|| format!("opening package {}", package.display()))
}

/// The runtime options the flags ask for.
pub fn runtime_options(args: &RuntimeArgs, image: ImageOptions) -> RuntimeOptions {
    RuntimeOptions {
        onnxruntime_library: args.onnxruntime.clone(),
        intra_op_threads: args.threads,
        inter_op_threads: args.inter_op_threads,
        optimization_level: match args.optimization {
            Optimization::Disable => OptimizationLevel::Disable,
            Optimization::Basic => OptimizationLevel::Basic,
            Optimization::Extended => OptimizationLevel::Extended,
            Optimization::All => OptimizationLevel::All,
        },
        memory_arena: !args.no_memory_arena,
        intra_op_spinning: args.spin,
        precision: args.precision,
        image,
        ..RuntimeOptions::default()
    }
}

/// How image files are read, from the pipeline flags. Recorded in output markers, since
/// it changes results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageReading {
    pub exif_orientation: bool,
    pub fast_jpeg: bool,
    pub max_pixels: u64,
}

impl Default for ImageReading {
    /// The runtime's defaults: pixels as stored, exact JPEG decoding, PIL's pixel limit.
    fn default() -> Self {
        let defaults = ImageOptions::default();
        ImageReading {
            exif_orientation: defaults.apply_exif_orientation,
            fast_jpeg: defaults.jpeg_dct_scaling,
            max_pixels: defaults.max_pixels,
        }
    }
}

impl ImageReading {
    pub fn from_args(args: &PipelineArgs) -> Self {
        ImageReading {
            exif_orientation: args.exif_orientation(),
            fast_jpeg: args.fast_jpeg,
            max_pixels: args.max_pixels.unwrap_or(Self::default().max_pixels),
        }
    }

    pub fn options(&self) -> ImageOptions {
        ImageOptions {
            apply_exif_orientation: self.exif_orientation,
            jpeg_dct_scaling: self.fast_jpeg,
            max_pixels: self.max_pixels,
            ..ImageOptions::default()
        }
    }
}

/// The package's identity for output markers: its directory (absolute when it can be
/// resolved) and the sha256 of its `vtde.json`, which holds every graph's sha256.
pub fn package_identity(package: &Path) -> Result<(String, String)> {
    let dir = std::fs::canonicalize(package).unwrap_or_else(|_| package.to_owned());
    let sha = vtde_runtime::package::sha256_file(&package.join("vtde.json"))
        .with_context(|| format!("hashing {}", package.join("vtde.json").display()))?;
    Ok((dir.display().to_string(), sha))
}

/// `pixel_values` → projected, L2-normalized image embeddings (what
/// [`Model::embed_images`] does after preprocessing).
pub fn embed_pixels(model: &Model, pixels: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
    let features = model
        .image_features(pixels)
        .context("running the vision graph")?;
    let no_text = Array2::<f32>::zeros((0, model.manifest().graphs.text.output_dim));
    let (embeds, _) = model
        .project(features.view(), no_text.view())
        .context("running the projection graph")?;
    Ok(l2_normalize(embeds.view()))
}

/// `--format`, else guessed from the output file's extension, else CSV.
pub fn output_format(format: Option<Format>, output: Option<&Path>) -> Format {
    format.unwrap_or_else(|| {
        let ext = output
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("jsonl" | "ndjson") => Format::Jsonl,
            _ => Format::Csv,
        }
    })
}

/// The non-blank lines of a UTF-8 text file (a trailing `\r` is removed).
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (UTF-8 text)", path.display()))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if lines.is_empty() {
        bail!("{} has no non-blank lines", path.display());
    }
    Ok(lines)
}

/// `path` with `suffix` appended to its file name (`out.csv` → `out.csv.progress.json`).
pub fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}
