//! `vtde bench preprocess`: image decoding and preprocessing per image, next to PIL +
//! transformers' processors measured in the same run.
//!
//! The images: the files given, else a set cut from scikit-image's real photos by
//! `tools/bench_preprocess.py --make-images` (JPEGs of 1024×768 and 4000×3000, PNGs of
//! 1024×768; needs `--python`), else, without Python, the same sizes synthesized from the
//! test fixtures' photos (upscaled, with seeded sensor-like noise; marked as such).
//!
//! Three preprocessing configs: transformers' `CLIPImageProcessorPil` and
//! `ViTImageProcessorPil` defaults (224 px), and the package's own. For each group of
//! files and each config, vtde's `ImagePreprocessor::preprocess_file` (decode + RGB +
//! resize + crop + normalize, bit-exact with PIL) is timed on one thread, as a pool over
//! all cores (`preprocess_files`, one image per task), and with the optional JPEG
//! DCT-domain scaling; `decode` compares decoding alone (`read_image` against
//! `Image.open(f).convert("RGB")`). Python runs `tools/bench_preprocess.py` on one thread.
//! Every number is the median over `--repeats` passes of the mean time per image; ratios
//! are Python's time over vtde's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vtde_runtime::image::{imageops, DynamicImage};
use vtde_runtime::manifest::{
    ImagePreprocess, Normalize, ResampleFilter, Resize, ResizeRule, Size,
};
use vtde_runtime::ndarray::Array3;
use vtde_runtime::{read_image, ImageOptions, ImagePreprocessor, Package, PackageOptions};

/// What to measure.
#[derive(Debug, Clone)]
pub struct PreprocessBenchSettings {
    /// Package whose image preprocessing is measured.
    pub package: PathBuf,
    /// Image files to measure on (empty: made by `tools/bench_preprocess.py` with
    /// `python`, else synthesized from the test photos).
    pub images: Vec<PathBuf>,
    /// Python of the reference environment, for the baseline.
    pub python: Option<PathBuf>,
    /// Timed passes over the images (the median is reported).
    pub repeats: usize,
}

const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// One measured file and the group it is reported in.
struct BenchFile {
    path: PathBuf,
    group: String,
}

/// Milliseconds per image by (group, measurement).
type Table = BTreeMap<(String, String), f64>;

/// Runs the preprocessing benchmark (vtde and PIL + transformers) and prints its table.
pub fn run(args: &PreprocessBenchSettings) -> Result<()> {
    if args.repeats == 0 {
        bail!("repeats must be at least 1");
    }
    let unverified = PackageOptions::default().with_checksum_verification(false);
    let package = Package::open(&args.package, &unverified)
        .with_context(|| format!("opening package {}", args.package.display()))?;
    let package_image = package.manifest().image.clone();
    let configs = [
        ("clip", clip_default()),
        ("vit", vit_default()),
        ("package", package_image.clone()),
    ];

    let scratch =
        std::env::temp_dir().join(format!("vtde-bench-preprocess-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let (files, synthetic) = bench_files(args, &scratch)?;
        if files.is_empty() {
            bail!("no images to measure");
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        eprintln!(
            "vtde bench preprocess: {} files, {} passes, pool of {threads} threads",
            files.len(),
            args.repeats
        );
        let ours = measure_vtde(&files, &configs, args.repeats, threads)?;
        let python = match &args.python {
            Some(python) => Some(measure_python(
                python,
                &files,
                &package_image,
                args.repeats,
            )?),
            None => {
                eprintln!("vtde bench preprocess: Python baseline skipped (give --python)");
                None
            }
        };
        print_table(
            &files,
            &ours,
            python.as_ref(),
            threads,
            args.repeats,
            synthetic,
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn clip_default() -> ImagePreprocess {
    ImagePreprocess {
        height: 224,
        width: 224,
        convert_rgb: true,
        resize: Some(Resize {
            rule: ResizeRule::ShortestEdge { shortest_edge: 224 },
            filter: ResampleFilter::Bicubic,
        }),
        center_crop: Some(Size {
            height: 224,
            width: 224,
        }),
        rescale_factor: Some(1.0 / 255.0),
        normalize: Some(Normalize {
            mean: CLIP_MEAN,
            std: CLIP_STD,
        }),
    }
}

fn vit_default() -> ImagePreprocess {
    ImagePreprocess {
        height: 224,
        width: 224,
        convert_rgb: true,
        resize: Some(Resize {
            rule: ResizeRule::Exact {
                height: 224,
                width: 224,
            },
            filter: ResampleFilter::Bilinear,
        }),
        center_crop: None,
        rescale_factor: Some(1.0 / 255.0),
        normalize: Some(Normalize {
            mean: [0.5; 3],
            std: [0.5; 3],
        }),
    }
}

/// The files to measure, and whether they were synthesized (not real photos).
fn bench_files(args: &PreprocessBenchSettings, scratch: &Path) -> Result<(Vec<BenchFile>, bool)> {
    if !args.images.is_empty() {
        let files = args
            .images
            .iter()
            .map(|path| {
                let image = read_image(path, &ImageOptions::default())
                    .with_context(|| format!("reading {}", path.display()))?;
                let kind = path
                    .extension()
                    .map_or("image".into(), |e| e.to_string_lossy().to_uppercase());
                Ok(BenchFile {
                    path: path.clone(),
                    group: format!("{kind} {}x{}", image.width(), image.height()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok((files, false));
    }
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    if let Some(python) = &args.python {
        let script = script_path()?;
        let output = std::process::Command::new(python)
            .arg(&script)
            .arg("--make-images")
            .arg(scratch)
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        if !output.status.success() {
            bail!(
                "{} {} --make-images failed ({}): {}",
                python.display(),
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let list: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)
            .context("parsing the image list of bench_preprocess.py")?;
        let files = list
            .iter()
            .filter_map(|v| {
                Some(BenchFile {
                    path: PathBuf::from(v["path"].as_str()?),
                    group: v["group"].as_str()?.to_owned(),
                })
            })
            .collect();
        return Ok((files, false));
    }
    Ok((synthesize(scratch)?, true))
}

/// `tools/bench_preprocess.py`, beside the sources this binary was built from, or under
/// the current directory.
fn script_path() -> Result<PathBuf> {
    let candidates = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/bench_preprocess.py"),
        PathBuf::from("tools/bench_preprocess.py"),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .context("tools/bench_preprocess.py not found (run from the vtde repository)")
}

/// Without Python: the benchmark sizes made from the fixture photos, upscaled with seeded
/// noise (the entropy, and so the decoding cost, of camera files).
fn synthesize(dir: &Path) -> Result<Vec<BenchFile>> {
    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images/files");
    let sources: Vec<PathBuf> = ["e2e_rocket_420.jpg", "e2e_astronaut_progressive.jpg"]
        .iter()
        .map(|n| photos.join(n))
        .filter(|p| p.is_file())
        .collect();
    if sources.is_empty() {
        bail!(
            "no images given, no --python to make them, and no fixture photos under {}",
            photos.display()
        );
    }
    eprintln!(
        "vtde bench preprocess: no images and no --python: synthesizing them from the fixture \
         photos (upscaled; pass IMAGES or --python for real photo files)"
    );
    let mut files = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for (group, (w, h), ext, count) in [
        ("JPEG 1024x768", (1024, 768), "jpg", 2),
        ("JPEG 4000x3000", (4000, 3000), "jpg", 1),
        ("PNG 1024x768", (1024, 768), "png", 1),
    ] {
        for (i, src) in sources.iter().cycle().take(count).enumerate() {
            let photo = read_image(src, &ImageOptions::default())?.to_rgb8();
            let mut big = imageops::resize(&photo, w, h, imageops::FilterType::Lanczos3);
            for v in big.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *v = (i16::from(*v) + (seed % 9) as i16 - 4).clamp(0, 255) as u8;
            }
            let path = dir.join(format!("synthetic_{w}x{h}_{i}.{ext}"));
            let image = DynamicImage::ImageRgb8(big);
            if ext == "jpg" {
                let file = std::fs::File::create(&path)?;
                let mut enc = vtde_runtime::image::codecs::jpeg::JpegEncoder::new_with_quality(
                    std::io::BufWriter::new(file),
                    90,
                );
                enc.encode_image(&image)?;
            } else {
                image.save(&path)?;
            }
            files.push(BenchFile {
                path,
                group: group.to_owned(),
            });
        }
    }
    Ok(files)
}

/// Milliseconds per item: wall-clock, and the calling thread's CPU time where the system
/// tells it (Linux), which other load on the machine does not inflate.
#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: Option<f64>,
}

/// CPU time of the calling thread, in nanoseconds (Linux: `/proc/thread-self/schedstat`,
/// the same clock as Python's `time.thread_time`).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Median over `repeats` passes of the mean time per item of `pass` (which handles
/// `items` items), after one warm-up pass.
fn median_ms(repeats: usize, items: usize, mut pass: impl FnMut() -> Result<()>) -> Result<Timing> {
    pass()?;
    let per_item = items.max(1) as f64;
    let mut wall = Vec::with_capacity(repeats);
    let mut cpu = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let (t, c) = (Instant::now(), thread_cpu_ns());
        pass()?;
        wall.push(t.elapsed().as_secs_f64() * 1e3 / per_item);
        if let (Some(c0), Some(c1)) = (c, thread_cpu_ns()) {
            cpu.push(c1.saturating_sub(c0) as f64 / 1e6 / per_item);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    Ok(Timing {
        wall: median(wall).unwrap_or(0.0),
        cpu: if cpu.len() == repeats {
            median(cpu)
        } else {
            None
        },
    })
}

/// Records a timing under `key` (wall) and `key cpu`.
fn insert(table: &mut Table, group: &str, key: &str, t: Timing) {
    table.insert((group.to_owned(), key.to_owned()), t.wall);
    if let Some(cpu) = t.cpu {
        table.insert((group.to_owned(), format!("{key} cpu")), cpu);
    }
}

fn groups(files: &[BenchFile]) -> Vec<(String, Vec<&Path>)> {
    let mut out: Vec<(String, Vec<&Path>)> = Vec::new();
    for f in files {
        match out.iter_mut().find(|(g, _)| *g == f.group) {
            Some((_, v)) => v.push(&f.path),
            None => out.push((f.group.clone(), vec![&f.path])),
        }
    }
    out
}

fn measure_vtde(
    files: &[BenchFile],
    configs: &[(&str, ImagePreprocess)],
    repeats: usize,
    threads: usize,
) -> Result<Table> {
    let mut table = Table::new();
    let exact = ImageOptions::default().with_decode_threads(1);
    let dct = exact.clone().with_jpeg_dct_scaling(true);
    let pool = ImageOptions::default().with_decode_threads(threads);
    for (group, paths) in groups(files) {
        let decode = median_ms(repeats, paths.len(), || {
            for p in &paths {
                read_image(p, &exact)?;
            }
            Ok(())
        })?;
        insert(&mut table, &group, "decode", decode);
        // The pool gets enough items to keep every thread busy.
        let many: Vec<&Path> = paths
            .iter()
            .copied()
            .cycle()
            .take(paths.len().max(2 * threads))
            .collect();
        for (name, config) in configs {
            let pre = ImagePreprocessor::new(config);
            let (h, w) = pre.output_size();
            let mut out = Array3::<f32>::zeros((3, h as usize, w as usize));
            let mut one = |options: &ImageOptions| {
                median_ms(repeats, paths.len(), || {
                    for p in &paths {
                        pre.preprocess_file(p, options, out.view_mut())?;
                    }
                    Ok(())
                })
            };
            insert(&mut table, &group, &format!("{name} 1t"), one(&exact)?);
            if group.starts_with("JPEG") || group.starts_with("JPG") {
                insert(&mut table, &group, &format!("{name} dct"), one(&dct)?);
            }
            // The runtime's streaming pipeline, all files in one batch.
            let pooled = median_ms(repeats, many.len(), || {
                pre.stream_files(&many, &pool, many.len(), |batch| {
                    match batch.failures.into_iter().next() {
                        Some((_, e)) => Err(e),
                        None => Ok(()),
                    }
                })
                .map_err(Into::into)
            })?;
            // Several threads: only the wall-clock time means something.
            table.insert((group.clone(), format!("{name} pool")), pooled.wall);
        }
    }
    Ok(table)
}

/// Runs `tools/bench_preprocess.py` on the files; returns its per-file milliseconds
/// averaged per group, and the library versions it ran.
fn measure_python(
    python: &Path,
    files: &[BenchFile],
    package_image: &ImagePreprocess,
    repeats: usize,
) -> Result<(Table, String)> {
    let script = script_path()?;
    let out =
        std::env::temp_dir().join(format!("vtde-bench-preprocess-{}.json", std::process::id()));
    eprintln!(
        "vtde bench preprocess: running the Python baseline ({})",
        script.display()
    );
    let mut command = std::process::Command::new(python);
    command
        .arg(&script)
        .args(["--repeats", &repeats.to_string()])
        .arg("--package-image")
        .arg(serde_json::to_string(package_image)?)
        .args(files.iter().map(|f| &f.path))
        .env("OMP_NUM_THREADS", "1");
    let json = super::run_json_script(command, python, &script, &out)?;
    let mut table = Table::new();
    for (group, paths) in groups(files) {
        for (section, suffix) in [("ms", ""), ("cpu_ms", " cpu")] {
            for key in ["decode", "clip", "vit", "package"] {
                let values: Vec<f64> = paths
                    .iter()
                    .filter_map(|p| json[section][p.to_string_lossy().as_ref()][key].as_f64())
                    .collect();
                if values.len() == paths.len() {
                    table.insert(
                        (group.clone(), format!("{key}{suffix}")),
                        values.iter().sum::<f64>() / values.len() as f64,
                    );
                }
            }
        }
    }
    let versions = format!(
        "PIL {}, transformers {}",
        json["versions"]["PIL"].as_str().unwrap_or("?"),
        json["versions"]["transformers"].as_str().unwrap_or("?")
    );
    Ok((table, versions))
}

fn print_table(
    files: &[BenchFile],
    ours: &Table,
    python: Option<&(Table, String)>,
    threads: usize,
    repeats: usize,
    synthetic: bool,
) {
    let get = |t: &Table, g: &str, k: &str| t.get(&(g.to_owned(), k.to_owned())).copied();
    let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let ratio = |py: Option<f64>, v: Option<f64>| match (py, v) {
        (Some(p), Some(v)) if v > 0.0 => format!("{:.1}x", p / v),
        _ => "-".to_owned(),
    };
    println!(
        "ms per image, median of {repeats} passes{}; Python: {} on 1 thread; vtde: 1 thread, \
         a pool of {threads}, and 1 thread with JPEG DCT scaling (not bit-exact)",
        if synthetic {
            " (synthesized images)"
        } else {
            ""
        },
        python.map_or("skipped".to_owned(), |(_, v)| v.clone()),
    );
    println!(
        "{:19} {:8} | {:>8} {:>10} {:>8} | {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7}",
        "images",
        "work",
        "PIL",
        "processor",
        "Python",
        "vtde 1t",
        "pool",
        "DCT",
        "1t",
        "pool",
        "DCT"
    );
    for (group, paths) in groups(files) {
        let py = python.map(|(t, _)| t);
        let py_decode = py.and_then(|t| get(t, &group, "decode"));
        let d = get(ours, &group, "decode");
        println!(
            "{:19} {:8} | {:>8} {:>10} {:>8} | {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7}",
            format!("{group} ({})", paths.len()),
            "decode",
            cell(py_decode),
            "",
            cell(py_decode),
            cell(d),
            "",
            "",
            ratio(py_decode, d),
            "",
            ""
        );
        for name in ["clip", "vit", "package"] {
            let processor = py.and_then(|t| get(t, &group, name));
            let total = py_decode.zip(processor).map(|(a, b)| a + b);
            let one = get(ours, &group, &format!("{name} 1t"));
            let pool = get(ours, &group, &format!("{name} pool"));
            let dct = get(ours, &group, &format!("{name} dct"));
            println!(
                "{:19} {:8} | {:>8} {:>10} {:>8} | {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7}",
                "",
                name,
                cell(py_decode),
                cell(processor),
                cell(total),
                cell(one),
                cell(pool),
                cell(dct),
                ratio(total, one),
                ratio(total, pool),
                ratio(total, dct)
            );
        }
    }
    println!(
        "work: decode = decoding to RGB only; clip / vit = transformers' CLIPImageProcessorPil / \
         ViTImageProcessorPil defaults (224 px); package = the package's preprocessing. \
         Python = PIL decode + processor; ratios = Python / vtde."
    );
    if ours.keys().any(|(_, k)| k.ends_with(" cpu")) {
        println!(
            "\nCPU time of the measuring thread, ms per image (not inflated by other load on \
             the machine), 1 thread"
        );
        println!(
            "{:19} {:8} | {:>8} {:>8} {:>8} | {:>7} {:>7}",
            "images", "work", "Python", "vtde", "DCT", "ratio", "DCT"
        );
        for (group, paths) in groups(files) {
            for name in ["decode", "clip", "vit", "package"] {
                let py = python.and_then(|(t, _)| {
                    let decode = get(t, &group, "decode cpu")?;
                    match name {
                        "decode" => Some(decode),
                        _ => Some(decode + get(t, &group, &format!("{name} cpu"))?),
                    }
                });
                let (one, dct) = match name {
                    "decode" => (get(ours, &group, "decode cpu"), None),
                    _ => (
                        get(ours, &group, &format!("{name} 1t cpu")),
                        get(ours, &group, &format!("{name} dct cpu")),
                    ),
                };
                let label = if name == "decode" {
                    format!("{group} ({})", paths.len())
                } else {
                    String::new()
                };
                println!(
                    "{:19} {:8} | {:>8} {:>8} {:>8} | {:>7} {:>7}",
                    label,
                    name,
                    cell(py),
                    cell(one),
                    cell(dct),
                    ratio(py, one),
                    ratio(py, dct)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_grouped_in_first_seen_order() {
        let f = |p: &str, g: &str| BenchFile {
            path: PathBuf::from(p),
            group: g.to_owned(),
        };
        let files = [f("a", "JPEG 1"), f("b", "PNG"), f("c", "JPEG 1")];
        let g = groups(&files);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, "JPEG 1");
        assert_eq!(g[0].1, [Path::new("a"), Path::new("c")]);
        assert_eq!(g[1].1, [Path::new("b")]);
    }

    #[test]
    fn median_runs_a_warm_up_and_the_passes() {
        let mut calls = 0;
        let t = median_ms(3, 2, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 4);
        assert!(t.wall >= 0.0);
        assert!(median_ms(1, 1, || bail!("boom")).is_err());
    }

    #[test]
    fn default_configs_are_the_transformers_defaults() {
        // CLIPImageProcessor: shortest edge 224, bicubic, crop 224; ViTImageProcessor:
        // 224x224 bilinear, mean/std 0.5.
        let clip = clip_default();
        assert_eq!(clip.resize.unwrap().filter, ResampleFilter::Bicubic);
        assert_eq!(
            clip.center_crop.map(|c| (c.height, c.width)),
            Some((224, 224))
        );
        let vit = vit_default();
        assert_eq!(vit.resize.unwrap().filter, ResampleFilter::Bilinear);
        assert!(vit.center_crop.is_none());
    }
}
