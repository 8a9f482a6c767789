//! Opening a model package directory and checking it before anything runs.
//!
//! [`Package::open`] reads `vtde.json`, refuses a manifest from a newer format version
//! (checked before the strict schema, so that a newer manifest with new fields gets the
//! "upgrade" message rather than a schema error), checks that the manifest's values make
//! sense, and checks every file it names: each graph exists and has the sha256 the
//! manifest records, and the tokenizer file exists (the manifest has no hash for it yet;
//! it is parsed when the model opens). Each problem becomes its own [`Error`] variant
//! naming the file.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::checksum_cache;
use crate::error::{Error, GraphKind, Result};
use crate::manifest::{
    self, GraphFile, GraphFiles, Manifest, Precision, ResizeRule, FORMAT_VERSION, MANIFEST_FILE,
};

/// A package directory whose manifest has been read and whose files have been checked.
#[derive(Debug, Clone)]
pub struct Package {
    dir: PathBuf,
    manifest: Manifest,
    /// The precision of the vision and text graphs in use (the projection is fp32).
    precision: Precision,
}

impl Package {
    /// Opens the package in `dir` and verifies every graph's sha256.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, true)
    }

    /// Opens the package in `dir`; verifies the graphs' sha256 only if `verify_checksums`.
    /// File existence is always checked.
    pub fn open_with(dir: impl AsRef<Path>, verify_checksums: bool) -> Result<Self> {
        Self::open_in(dir, verify_checksums, Precision::Fp32)
    }

    /// Opens the package in `dir` to run its vision and text graphs in `precision` (the
    /// package must have that variant); verifies the sha256 of the graphs in use only if
    /// `verify_checksums`.
    pub fn open_in(
        dir: impl AsRef<Path>,
        verify_checksums: bool,
        precision: Precision,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest_path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let manifest = parse_manifest(&manifest_path, &bytes)?;
        validate_manifest(&manifest_path, &manifest)?;
        let package = Package {
            dir,
            manifest,
            precision,
        };
        for kind in [GraphKind::Vision, GraphKind::Text] {
            if package.graph(kind).in_precision(precision).is_none() {
                return Err(Error::MissingVariant {
                    package: package.dir.clone(),
                    graph: kind,
                    precision,
                });
            }
        }

        let tokenizer = package.tokenizer_path();
        if !tokenizer.is_file() {
            return Err(Error::io(
                tokenizer,
                std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
            ));
        }
        for (path, _) in package.files_in_use() {
            if !path.is_file() {
                return Err(Error::io(
                    path,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
                ));
            }
        }
        if verify_checksums {
            package.verify_checksums()?;
        }
        Ok(package)
    }

    /// The package directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest entry of a graph.
    pub fn graph(&self, kind: GraphKind) -> &GraphFile {
        match kind {
            GraphKind::Vision => &self.manifest.graphs.vision,
            GraphKind::Text => &self.manifest.graphs.text,
            GraphKind::Projection => &self.manifest.graphs.projection,
        }
    }

    /// The precision of the vision and text graphs in use.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The files of the graph in use: the variant in the package's precision for the
    /// towers, the fp32 graph for the projection.
    fn graph_in_use(&self, kind: GraphKind) -> GraphFiles<'_> {
        let graph = self.graph(kind);
        let precision = match kind {
            GraphKind::Projection => graph.precision,
            GraphKind::Vision | GraphKind::Text => self.precision,
        };
        // `open_in` checked that the variant exists.
        graph.in_precision(precision).unwrap_or(GraphFiles {
            file: &graph.file,
            sha256: &graph.sha256,
            weights: graph.weights.as_ref(),
        })
    }

    /// The path of the ONNX file of a graph in use.
    pub fn graph_path(&self, kind: GraphKind) -> PathBuf {
        self.dir.join(self.graph_in_use(kind).file)
    }

    /// The path of the weights file of a graph in use, if its weights are not inside the
    /// ONNX file.
    pub fn weights_path(&self, kind: GraphKind) -> Option<PathBuf> {
        self.graph_in_use(kind)
            .weights
            .map(|w| self.dir.join(&w.file))
    }

    /// Every file of the graphs in use with the sha256 the manifest records.
    fn files_in_use(&self) -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        for kind in GraphKind::ALL {
            let g = self.graph_in_use(kind);
            files.push((self.dir.join(g.file), g.sha256.to_ascii_lowercase()));
            if let Some(w) = g.weights {
                files.push((self.dir.join(&w.file), w.sha256.to_ascii_lowercase()));
            }
        }
        files
    }

    /// The path of the tokenizer file.
    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.text.tokenizer)
    }

    /// Hashes the three graphs, in parallel (hashing is I/O- and CPU-bound, and a large
    /// package should still open quickly), and compares with the manifest.
    pub fn verify_checksums(&self) -> Result<()> {
        self.verify_checksums_cached(None)
    }

    /// As [`Package::verify_checksums`], but skips the graphs that `cache_dir` records
    /// as verified and unchanged since, and records the ones it hashes (see
    /// [`crate::checksum_cache`]).
    pub fn verify_checksums_cached(&self, cache_dir: Option<&Path>) -> Result<()> {
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .files_in_use()
                .into_iter()
                .map(|(path, expected)| {
                    scope.spawn(move || {
                        if let Some(cache) = cache_dir {
                            if checksum_cache::is_verified(cache, &path, &expected) {
                                return Ok(());
                            }
                        }
                        // Read before hashing: a write during hashing then voids the entry.
                        let identity = cache_dir.and_then(|_| checksum_cache::identity(&path));
                        let actual = sha256_file(&path)?;
                        if actual == expected {
                            if let (Some(cache), Some(identity)) = (cache_dir, identity) {
                                checksum_cache::record_verified(cache, &path, &expected, &identity);
                            }
                            Ok(())
                        } else {
                            Err(Error::ChecksumMismatch {
                                path,
                                expected,
                                actual,
                            })
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::io(
                            self.dir.clone(),
                            std::io::Error::other("checksum thread panicked"),
                        ))
                    })
                })
                .collect()
        });
        results.into_iter().collect()
    }
}

/// The lowercase hex sha256 of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Parses `vtde.json`: the format version first, then the strict schema.
pub fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<Manifest> {
    let invalid = |message: String| Error::InvalidManifest {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let version = value
        .get("format_version")
        .ok_or_else(|| invalid("missing field `format_version`".into()))?;
    let version = version.as_u64().ok_or_else(|| {
        invalid(format!(
            "`format_version` must be a positive integer, got {version}"
        ))
    })?;
    if version > u64::from(FORMAT_VERSION) {
        return Err(Error::UnsupportedFormatVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(invalid(
            "`format_version` 0 does not exist; versions start at 1".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// Checks the manifest's values beyond what serde's schema checks: everything the
/// runtime would otherwise have to trust blindly (sizes, file names, input names).
pub fn validate_manifest(path: &Path, m: &Manifest) -> Result<()> {
    let invalid = |message: String| {
        Err(Error::InvalidManifest {
            path: path.to_path_buf(),
            message,
        })
    };
    let files = [
        ("graphs.vision.file", &m.graphs.vision.file),
        ("graphs.text.file", &m.graphs.text.file),
        ("graphs.projection.file", &m.graphs.projection.file),
        ("text.tokenizer", &m.text.tokenizer),
    ];
    for (field, file) in files {
        if !is_plain_relative(file) {
            return invalid(format!(
                "`{field}` must be a relative path inside the package, got {file:?}"
            ));
        }
    }
    for (field, g) in [
        ("vision", &m.graphs.vision),
        ("text", &m.graphs.text),
        ("projection", &m.graphs.projection),
    ] {
        if g.sha256.len() != 64 || !g.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return invalid(format!(
                "`graphs.{field}.sha256` must be 64 hex digits, got {:?}",
                g.sha256
            ));
        }
        if g.output_dim == 0 {
            return invalid(format!("`graphs.{field}.output_dim` must be positive"));
        }
        if g.precision != Precision::Fp32 {
            return invalid(format!(
                "`graphs.{field}.precision` must be fp32 (variants hold the others)"
            ));
        }
        let weights = std::iter::once((g.precision, g.weights.as_ref()))
            .chain(g.variants.iter().map(|v| (v.precision, v.weights.as_ref())));
        for (precision, w) in weights {
            if let Some(w) = w {
                let what = format!("the {precision} weights file of `graphs.{field}`");
                check_file_entry(&what, &w.file, &w.sha256).or_else(invalid)?;
            }
        }
        for v in &g.variants {
            let what = format!("the {} variant of `graphs.{field}`", v.precision);
            check_file_entry(&what, &v.file, &v.sha256).or_else(invalid)?;
        }
    }
    if m.graphs.projection.output_dim != m.projection_dim {
        return invalid(format!(
            "`graphs.projection.output_dim` ({}) differs from `projection_dim` ({})",
            m.graphs.projection.output_dim, m.projection_dim
        ));
    }
    if !m.logit_scale.is_finite() {
        return invalid(format!(
            "`logit_scale` must be finite, got {}",
            m.logit_scale
        ));
    }
    let img = &m.image;
    if img.height == 0 || img.width == 0 {
        return invalid(format!(
            "`image.height` and `image.width` must be positive, got {}x{}",
            img.height, img.width
        ));
    }
    if let Some(resize) = &img.resize {
        match resize.rule {
            ResizeRule::Exact { height, width } if height == 0 || width == 0 => {
                return invalid("`image.resize` size must be positive".into());
            }
            ResizeRule::ShortestEdge { shortest_edge: 0 } => {
                return invalid("`image.resize.shortest_edge` must be positive".into());
            }
            _ => {}
        }
    }
    let final_size = match (&img.center_crop, &img.resize) {
        (Some(crop), _) => Some((crop.height, crop.width)),
        (None, Some(r)) => match r.rule {
            ResizeRule::Exact { height, width } => Some((height, width)),
            ResizeRule::ShortestEdge { .. } => None,
        },
        (None, None) => None,
    };
    if let Some((h, w)) = final_size {
        if (h, w) != (img.height, img.width) {
            return invalid(format!(
                "preprocessing yields {h}x{w} images but `image.height`x`image.width` is {}x{}",
                img.height, img.width
            ));
        }
    }
    if let Some(f) = img.rescale_factor {
        if !f.is_finite() {
            return invalid(format!("`image.rescale_factor` must be finite, got {f}"));
        }
    }
    if let Some(n) = &img.normalize {
        if n.mean.iter().chain(&n.std).any(|v| !v.is_finite()) || n.std.contains(&0.0) {
            return invalid(format!(
                "`image.normalize` needs finite mean and non-zero finite std, got {n:?}"
            ));
        }
    }
    let text = &m.text;
    if text.max_length == 0 {
        return invalid("`text.max_length` must be positive".into());
    }
    let inputs: Vec<&str> = text.inputs.iter().map(String::as_str).collect();
    let two = [manifest::names::INPUT_IDS, manifest::names::ATTENTION_MASK];
    let three = [
        manifest::names::INPUT_IDS,
        manifest::names::ATTENTION_MASK,
        manifest::names::TOKEN_TYPE_IDS,
    ];
    if inputs != two && inputs != three {
        return invalid(format!(
            "`text.inputs` must be {two:?} or {three:?}, got {inputs:?}"
        ));
    }
    Ok(())
}

/// True for a non-empty relative path made only of normal components (no `..`, no root).
/// Checks a file entry of the manifest (`what` names it in the message): a relative path
/// inside the package and a sha256 of 64 hex digits.
fn check_file_entry(what: &str, file: &str, sha256: &str) -> std::result::Result<(), String> {
    if !is_plain_relative(file) {
        return Err(format!(
            "{what} must be a relative path inside the package, got {file:?}"
        ));
    }
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{what} needs a sha256 of 64 hex digits, got {sha256:?}"
        ));
    }
    Ok(())
}

fn is_plain_relative(file: &str) -> bool {
    let p = Path::new(file);
    !file.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::*;

    /// A manifest whose graphs and tokenizer are the given files (hashes filled in by
    /// [`write_package`]).
    pub(crate) fn sample_manifest() -> Manifest {
        let graph = |file: &str, dim| GraphFile {
            file: file.into(),
            opset: 17,
            precision: Precision::Fp32,
            sha256: "0".repeat(64),
            weights: None,
            output_dim: dim,
            variants: Vec::new(),
        };
        Manifest {
            format_version: FORMAT_VERSION,
            source: Source {
                architecture: "VisionTextDualEncoderModel".into(),
                vision_model_type: "vit".into(),
                text_model_type: "bert".into(),
            },
            projection_dim: 4,
            logit_scale: 2.6592,
            image: ImagePreprocess {
                height: 8,
                width: 8,
                convert_rgb: true,
                resize: Some(Resize {
                    rule: ResizeRule::ShortestEdge { shortest_edge: 8 },
                    filter: ResampleFilter::Bicubic,
                }),
                center_crop: Some(Size {
                    height: 8,
                    width: 8,
                }),
                rescale_factor: Some(1.0 / 255.0),
                normalize: Some(Normalize {
                    mean: [0.5, 0.5, 0.5],
                    std: [0.5, 0.5, 0.5],
                }),
            },
            text: TextPreprocess {
                tokenizer: "tokenizer.json".into(),
                max_length: 16,
                pad_token_id: 0,
                inputs: vec!["input_ids".into(), "attention_mask".into()],
            },
            graphs: Graphs {
                vision: graph("vision.onnx", 6),
                text: graph("text.onnx", 5),
                projection: graph("projection.onnx", 4),
            },
            producer: Producer {
                name: "test".into(),
                version: "0".into(),
            },
        }
    }

    /// Writes `files` (name → bytes) and a manifest with their real sha256 into `dir`.
    pub(crate) fn write_package(dir: &Path, mut m: Manifest, files: &[(&str, &[u8])]) {
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        for g in [
            &mut m.graphs.vision,
            &mut m.graphs.text,
            &mut m.graphs.projection,
        ] {
            if let Some((_, bytes)) = files.iter().find(|(n, _)| *n == g.file) {
                g.sha256 = hex::encode(Sha256::digest(bytes));
            }
        }
        std::fs::write(
            dir.join(MANIFEST_FILE),
            serde_json::to_vec_pretty(&m).unwrap(),
        )
        .unwrap();
    }

    const FILES: &[(&str, &[u8])] = &[
        ("vision.onnx", b"vision"),
        ("text.onnx", b"text"),
        ("projection.onnx", b"projection"),
        ("tokenizer.json", b"{}"),
    ];

    #[test]
    fn opens_a_good_package() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), FILES);
        let p = Package::open(dir.path()).unwrap();
        assert_eq!(p.manifest().projection_dim, 4);
        assert_eq!(p.graph_path(GraphKind::Text), dir.path().join("text.onnx"));
    }

    #[test]
    fn missing_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let err = Package::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::Io { ref path, .. } if path.ends_with("vtde.json")),
            "{err}"
        );
    }

    #[test]
    fn missing_graph_file() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), FILES);
        std::fs::remove_file(dir.path().join("text.onnx")).unwrap();
        let err = Package::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::Io { ref path, .. } if path.ends_with("text.onnx")),
            "{err}"
        );
        assert!(err.to_string().contains("text.onnx"));
    }

    #[test]
    fn missing_tokenizer_file() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), FILES);
        std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
        let err = Package::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn bad_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{ not json").unwrap();
        let err = Package::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidManifest { .. }), "{err}");
        assert!(err.to_string().contains("vtde.json"));
    }

    #[test]
    fn schema_error_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(sample_manifest()).unwrap();
        v.as_object_mut().unwrap().remove("logit_scale");
        std::fs::write(dir.path().join(MANIFEST_FILE), v.to_string()).unwrap();
        let err = Package::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("logit_scale"), "{err}");
    }

    #[test]
    fn newer_format_version_is_refused_even_with_new_fields() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(sample_manifest()).unwrap();
        v["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        v["some_future_field"] = serde_json::json!(true);
        std::fs::write(dir.path().join(MANIFEST_FILE), v.to_string()).unwrap();
        let err = Package::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedFormatVersion { found, .. } if found == u64::from(FORMAT_VERSION) + 1),
            "{err}"
        );
    }

    #[test]
    fn checksum_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), FILES);
        std::fs::write(dir.path().join("vision.onnx"), b"tampered").unwrap();
        let err = Package::open(dir.path()).unwrap_err();
        match &err {
            Error::ChecksumMismatch {
                path,
                expected,
                actual,
            } => {
                assert!(path.ends_with("vision.onnx"));
                assert_eq!(expected, &hex::encode(Sha256::digest(b"vision")));
                assert_eq!(actual, &hex::encode(Sha256::digest(b"tampered")));
            }
            other => panic!("unexpected {other}"),
        }
        // Without verification the package opens.
        Package::open_with(dir.path(), false).unwrap();
    }

    /// A manifest whose text graph keeps its weights in `text.onnx.data`.
    fn manifest_with_text_weights(weights: &[u8]) -> Manifest {
        let mut m = sample_manifest();
        m.graphs.text.weights = Some(crate::manifest::WeightsFile {
            file: "text.onnx.data".into(),
            sha256: hex::encode(Sha256::digest(weights)),
        });
        m
    }

    #[test]
    fn weights_files_are_checked_like_graphs() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), manifest_with_text_weights(b"weights"), FILES);
        std::fs::write(dir.path().join("text.onnx.data"), b"weights").unwrap();
        let p = Package::open(dir.path()).unwrap();
        assert_eq!(
            p.weights_path(GraphKind::Text),
            Some(dir.path().join("text.onnx.data"))
        );
        assert_eq!(p.weights_path(GraphKind::Vision), None);

        std::fs::write(dir.path().join("text.onnx.data"), b"tampered").unwrap();
        match Package::open(dir.path()).unwrap_err() {
            Error::ChecksumMismatch { path, .. } => assert!(path.ends_with("text.onnx.data")),
            other => panic!("unexpected {other}"),
        }

        std::fs::remove_file(dir.path().join("text.onnx.data")).unwrap();
        match Package::open_with(dir.path(), false).unwrap_err() {
            Error::Io { path, .. } => assert!(path.ends_with("text.onnx.data")),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn weights_file_escaping_the_package_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest_with_text_weights(b"weights");
        if let Some(w) = m.graphs.text.weights.as_mut() {
            w.file = "/etc/passwd".into();
        }
        write_package(dir.path(), m, FILES);
        let err = Package::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidManifest { message, .. } if message.contains("weights file")),
            "{err}"
        );
    }

    #[test]
    fn path_escaping_the_package_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample_manifest();
        m.graphs.text.file = "../text.onnx".into();
        write_package(dir.path(), m, FILES);
        let err = Package::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidManifest { .. }), "{err}");
    }

    #[test]
    fn bad_text_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample_manifest();
        m.text.inputs = vec!["input_ids".into()];
        write_package(dir.path(), m, FILES);
        let err = Package::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("text.inputs"), "{err}");
    }

    #[test]
    fn inconsistent_crop_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample_manifest();
        m.image.height = 9;
        write_package(dir.path(), m, FILES);
        let err = Package::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidManifest { .. }), "{err}");
    }
}
