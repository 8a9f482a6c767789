//! Opening a model package directory and checking it before anything runs.
//!
//! [`Package::open`] reads `vtde.json` with the contract's own reader
//! ([`vtde_package::read_manifest`]: a newer format version is refused before the strict
//! schema, then the values are checked against the contract's bounds), and checks every
//! file the runtime will read: each graph of the precision in use, its weights file and
//! the tokenizer exist and have the sha256 the manifest records, and each graph reads
//! external data from its declared weights file only
//! ([`vtde_package::check_external_data`]), so that no file is used unhashed. Packages of
//! format versions 1 and 2 have no sha256 for the tokenizer: it is read unhashed, and
//! everything else is checked as for version 3. Each problem becomes its own [`Error`]
//! variant naming the file.

use std::path::{Path, PathBuf};

use vtde_package::manifest::{GraphFile, GraphFiles, MANIFEST_FILE};
use vtde_package::{sha256_file, GraphKind, Manifest, Precision};

use crate::checksum_cache;
use crate::error::{Error, Result};

/// How a [`Package`] is opened.
///
/// ```
/// use vtde_runtime::{PackageOptions, Precision};
///
/// let options = PackageOptions::default().with_precision(Precision::Int8);
/// assert!(options.verify_checksums);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackageOptions {
    /// Precision of the vision and text graphs to run (default fp32). Other precisions
    /// need the package to carry that variant (`vtde export --quantize int8` for the
    /// CPU, `--precision fp16` for GPUs).
    pub precision: Precision,
    /// Check each graph's sha256 against the manifest when opening (default true).
    pub verify_checksums: bool,
    /// Where verified graphs are remembered, so that an unchanged package is not hashed
    /// again on the next open (see the checksum cache in `docs/package-format.md`).
    /// Default: `$VTDE_CACHE_DIR`, else `$XDG_CACHE_HOME/vtde`, else `~/.cache/vtde`;
    /// `None` hashes on every open.
    pub checksum_cache_dir: Option<PathBuf>,
}

impl Default for PackageOptions {
    fn default() -> Self {
        PackageOptions {
            precision: Precision::Fp32,
            verify_checksums: true,
            checksum_cache_dir: checksum_cache::default_dir(),
        }
    }
}

impl PackageOptions {
    /// Sets [`PackageOptions::precision`].
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Sets [`PackageOptions::verify_checksums`].
    pub fn with_checksum_verification(mut self, verify: bool) -> Self {
        self.verify_checksums = verify;
        self
    }

    /// Sets [`PackageOptions::checksum_cache_dir`].
    pub fn with_checksum_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.checksum_cache_dir = dir;
        self
    }
}

/// A package directory whose manifest has been read and whose files have been checked.
#[derive(Debug, Clone)]
pub struct Package {
    dir: PathBuf,
    manifest: Manifest,
    /// The precision of the vision and text graphs in use (the projection is fp32).
    precision: Precision,
}

impl Package {
    /// Opens the package in `dir` to run its vision and text graphs in
    /// `options.precision` (the package must have that variant), checks that every file
    /// in use exists, and verifies their sha256 unless `options.verify_checksums` is off.
    pub fn open(dir: impl AsRef<Path>, options: &PackageOptions) -> Result<Self> {
        let package = Self::open_unverified(dir.as_ref(), options)?;
        if options.verify_checksums {
            package.verify_checksums(options.checksum_cache_dir.as_deref())?;
        }
        Ok(package)
    }

    /// [`Package::open`] without the checksums, which [`crate::Model::open`] verifies
    /// while it creates the sessions. The graphs' external-data references are checked
    /// here, before any session reads them.
    pub(crate) fn open_unverified(dir: &Path, options: &PackageOptions) -> Result<Self> {
        let precision = options.precision;
        let dir = dir.to_path_buf();
        let manifest = vtde_package::read_manifest(&dir.join(MANIFEST_FILE))?;
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

        require_file(&package.tokenizer_path())?;
        for (path, _) in package.files_in_use() {
            require_file(&path)?;
        }
        for kind in GraphKind::ALL {
            let files = package.graph_in_use(kind);
            if let Err(e) = vtde_package::check_external_data(&package.dir, files) {
                // A damaged graph may not scan; its checksum is the clearer message.
                if options.verify_checksums {
                    package.verify_file(&package.dir.join(files.file), files.sha256, None)?;
                }
                return Err(e.into());
            }
        }
        Ok(package)
    }

    /// Hashes `path` and compares with `expected` (recording the result in the checksum
    /// cache `cache_dir`), unless the cache records it as verified and unchanged.
    fn verify_file(&self, path: &Path, expected: &str, cache_dir: Option<&Path>) -> Result<()> {
        let expected = expected.to_ascii_lowercase();
        if let Some(cache) = cache_dir {
            if checksum_cache::is_verified(cache, path, &expected) {
                return Ok(());
            }
        }
        // Read before hashing: a write during hashing then voids the entry.
        let identity = cache_dir.and_then(|_| checksum_cache::identity(path));
        let actual = sha256_file(path)?;
        if actual == expected {
            if let (Some(cache), Some(identity)) = (cache_dir, identity) {
                checksum_cache::record_verified(cache, path, &expected, &identity);
            }
            Ok(())
        } else {
            Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                expected,
                actual,
            })
        }
    }

    /// The error to report when the tokenizer failed to load with `err`: a checksum
    /// mismatch when verification is on and the tokenizer's sha256 differs from the
    /// manifest (a damaged file is the clearer message), else `err`.
    pub(crate) fn explain_tokenizer_error(&self, err: Error, verify: bool) -> Error {
        match (&self.manifest.tokenizer_sha256, verify) {
            (Some(expected), true) => {
                match self.verify_file(&self.tokenizer_path(), expected, None) {
                    Ok(()) => err,
                    Err(mismatch) => mismatch,
                }
            }
            _ => err,
        }
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
        self.manifest.graphs.get(kind)
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
        // `open_unverified` checked that the variant exists.
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

    /// Every hashed file the runtime reads, with the sha256 the manifest records: the
    /// graphs in use, their weights files and (from format version 3) the tokenizer.
    fn files_in_use(&self) -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        for kind in GraphKind::ALL {
            let g = self.graph_in_use(kind);
            files.push((self.dir.join(g.file), g.sha256.to_ascii_lowercase()));
            if let Some(w) = g.weights {
                files.push((self.dir.join(&w.file), w.sha256.to_ascii_lowercase()));
            }
        }
        if let Some(sha256) = &self.manifest.tokenizer_sha256 {
            files.push((self.tokenizer_path(), sha256.to_ascii_lowercase()));
        }
        files
    }

    /// Whether the tokenizer is hashed: from format version 3, whose manifest records its
    /// sha256. Older packages' tokenizers are read unhashed.
    pub fn tokenizer_is_hashed(&self) -> bool {
        self.manifest.tokenizer_sha256.is_some()
    }

    /// The path of the tokenizer file.
    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.text.tokenizer)
    }

    /// Hashes the files in use (the graphs in use, their weights files, and the
    /// tokenizer where the manifest records its sha256), in parallel (hashing is I/O- and
    /// CPU-bound, and a large package should still open quickly), and compares with the
    /// manifest. Files that `cache_dir` records as verified and unchanged since are
    /// skipped, and the ones hashed are recorded there.
    pub fn verify_checksums(&self, cache_dir: Option<&Path>) -> Result<()> {
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .files_in_use()
                .into_iter()
                .map(|(path, expected)| {
                    scope.spawn(move || self.verify_file(&path, &expected, cache_dir))
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

/// A package file must be a regular file: missing, a directory or anything else is an
/// [`Error::Io`] that says which ("is a directory, not a file").
fn require_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        return Ok(());
    }
    let what = if meta.is_dir() {
        "is a directory, not a file"
    } else {
        "is not a regular file"
    };
    Err(Error::io(path, std::io::Error::other(what)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use vtde_package::manifest::*;

    /// Opens with verification (and no checksum cache, so that every open hashes).
    fn open(dir: &Path) -> Result<Package> {
        Package::open(
            dir,
            &PackageOptions::default().with_checksum_cache_dir(None),
        )
    }

    /// Opens without verifying checksums.
    fn open_unhashed(dir: &Path) -> Result<Package> {
        Package::open(
            dir,
            &PackageOptions::default().with_checksum_verification(false),
        )
    }

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
            tokenizer_sha256: Some("0".repeat(64)),
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
        if m.tokenizer_sha256.is_some() {
            if let Some((_, bytes)) = files.iter().find(|(n, _)| *n == m.text.tokenizer) {
                m.tokenizer_sha256 = Some(hex::encode(Sha256::digest(bytes)));
            }
        }
        std::fs::write(
            dir.join(MANIFEST_FILE),
            serde_json::to_vec_pretty(&m).unwrap(),
        )
        .unwrap();
    }

    /// Graph files that are valid (if empty) ONNX protobufs: a model with only its
    /// `producer_name` (field 2) set, so that each file differs.
    const FILES: &[(&str, &[u8])] = &[
        ("vision.onnx", b"\x12\x06vision"),
        ("text.onnx", b"\x12\x04text"),
        ("projection.onnx", b"\x12\x0aprojection"),
        ("tokenizer.json", b"{}"),
    ];

    #[test]
    fn opens_a_good_package() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), FILES);
        let p = open(dir.path()).unwrap();
        assert_eq!(p.manifest().projection_dim, 4);
        assert_eq!(p.graph_path(GraphKind::Text), dir.path().join("text.onnx"));
    }

    #[test]
    fn missing_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::Package(vtde_package::Error::Io { ref path, .. }) if path.ends_with("vtde.json")),
            "{err}"
        );
    }

    #[test]
    fn missing_graph_file() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), FILES);
        std::fs::remove_file(dir.path().join("text.onnx")).unwrap();
        let err = open(dir.path()).unwrap_err();
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
        // A directory in its place says so.
        std::fs::create_dir(dir.path().join("tokenizer.json")).unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("tokenizer.json: is a directory, not a file"),
            "{err}"
        );
        std::fs::remove_dir(dir.path().join("tokenizer.json")).unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn bad_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{ not json").unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Package(vtde_package::Error::InvalidManifest { .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("vtde.json"));
    }

    #[test]
    fn schema_error_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(sample_manifest()).unwrap();
        v.as_object_mut().unwrap().remove("logit_scale");
        std::fs::write(dir.path().join(MANIFEST_FILE), v.to_string()).unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("logit_scale"), "{err}");
    }

    #[test]
    fn newer_format_version_is_refused_even_with_new_fields() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(sample_manifest()).unwrap();
        v["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        v["some_future_field"] = serde_json::json!(true);
        std::fs::write(dir.path().join(MANIFEST_FILE), v.to_string()).unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::Package(vtde_package::Error::UnsupportedFormatVersion { found, .. }) if found == u64::from(FORMAT_VERSION) + 1),
            "{err}"
        );
    }

    #[test]
    fn checksum_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), FILES);
        std::fs::write(dir.path().join("vision.onnx"), b"\x12\x08tampered").unwrap();
        let err = open(dir.path()).unwrap_err();
        match &err {
            Error::ChecksumMismatch {
                path,
                expected,
                actual,
            } => {
                assert!(path.ends_with("vision.onnx"));
                assert_eq!(expected, &hex::encode(Sha256::digest(b"\x12\x06vision")));
                assert_eq!(actual, &hex::encode(Sha256::digest(b"\x12\x08tampered")));
            }
            other => panic!("unexpected {other}"),
        }
        // Without verification the package opens.
        open_unhashed(dir.path()).unwrap();

        // Bytes that are not a protobuf at all: with verification the checksum is the
        // message, without it the graph cannot be read for its external data.
        std::fs::write(dir.path().join("vision.onnx"), b"tampered").unwrap();
        assert!(matches!(
            open(dir.path()).unwrap_err(),
            Error::ChecksumMismatch { .. }
        ));
        match open_unhashed(dir.path()).unwrap_err() {
            Error::Package(vtde_package::Error::InvalidGraph { path, .. }) => {
                assert!(path.ends_with("vision.onnx"))
            }
            other => panic!("unexpected {other}"),
        }
    }

    /// A manifest whose text graph keeps its weights in `text.onnx.data`.
    fn manifest_with_text_weights(weights: &[u8]) -> Manifest {
        let mut m = sample_manifest();
        m.graphs.text.weights = Some(WeightsFile {
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
        let p = open(dir.path()).unwrap();
        assert_eq!(
            p.weights_path(GraphKind::Text),
            Some(dir.path().join("text.onnx.data"))
        );
        assert_eq!(p.weights_path(GraphKind::Vision), None);

        std::fs::write(dir.path().join("text.onnx.data"), b"tampered").unwrap();
        match open(dir.path()).unwrap_err() {
            Error::ChecksumMismatch { path, .. } => assert!(path.ends_with("text.onnx.data")),
            other => panic!("unexpected {other}"),
        }

        std::fs::remove_file(dir.path().join("text.onnx.data")).unwrap();
        match open_unhashed(dir.path()).unwrap_err() {
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
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Package(vtde_package::Error::InvalidManifest { message, .. }) if message.contains("weights file")),
            "{err}"
        );
    }

    #[test]
    fn path_escaping_the_package_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample_manifest();
        m.graphs.text.file = "../text.onnx".into();
        write_package(dir.path(), m, FILES);
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Package(vtde_package::Error::InvalidManifest { .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_text_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample_manifest();
        m.text.inputs = vec!["input_ids".into()];
        write_package(dir.path(), m, FILES);
        let err = open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("text.inputs"), "{err}");
    }

    #[test]
    fn inconsistent_crop_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample_manifest();
        m.image.height = 9;
        write_package(dir.path(), m, FILES);
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Package(vtde_package::Error::InvalidManifest { .. })
            ),
            "{err}"
        );
    }

    /// A protobuf length-delimited field.
    fn pb_field(field: u8, bytes: &[u8]) -> Vec<u8> {
        assert!(bytes.len() < 128);
        [vec![field << 3 | 2, bytes.len() as u8], bytes.to_vec()].concat()
    }

    /// An ONNX model whose graph has one initializer stored externally at `location`
    /// (TensorProto: name 8, external_data 13 {key 1, value 2}, data_location 14 = 1).
    fn graph_reading(location: &str) -> Vec<u8> {
        let entry = [pb_field(1, b"location"), pb_field(2, location.as_bytes())].concat();
        let tensor = [pb_field(8, b"w"), pb_field(13, &entry), vec![14 << 3, 1]].concat();
        let graph = pb_field(5, &tensor);
        [pb_field(2, b"test"), pb_field(7, &graph)].concat()
    }

    #[test]
    fn a_graph_reading_undeclared_external_data_is_refused() {
        let graph = graph_reading("text.onnx.data");
        let files: Vec<(&str, &[u8])> = vec![
            ("vision.onnx", FILES[0].1),
            ("text.onnx", &graph),
            ("projection.onnx", FILES[2].1),
            ("tokenizer.json", b"{}"),
            ("text.onnx.data", b"scrambled weights"),
        ];
        // `"weights": null`: the data file would be used without its sha256.
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), &files);
        for err in [
            open(dir.path()).unwrap_err(),
            open_unhashed(dir.path()).unwrap_err(),
        ] {
            match &err {
                Error::Package(vtde_package::Error::UndeclaredExternalData {
                    graph,
                    location,
                    declared,
                }) => {
                    assert!(graph.ends_with("text.onnx"));
                    assert_eq!(location, "text.onnx.data");
                    assert_eq!(declared, &None);
                }
                other => panic!("unexpected {other}"),
            }
            assert!(err.to_string().contains("text.onnx.data"), "{err}");
        }

        // Declared with its sha256, the same package opens, and the data is hashed.
        let dir = tempfile::tempdir().unwrap();
        write_package(
            dir.path(),
            manifest_with_text_weights(b"scrambled weights"),
            &files,
        );
        open(dir.path()).unwrap();
        std::fs::write(dir.path().join("text.onnx.data"), b"other weights").unwrap();
        assert!(matches!(
            open(dir.path()).unwrap_err(),
            Error::ChecksumMismatch { .. }
        ));

        // A graph reading another file than its declared weights is refused too.
        let other = graph_reading("other.bin");
        let files: Vec<(&str, &[u8])> = vec![
            ("vision.onnx", FILES[0].1),
            ("text.onnx", &other),
            ("projection.onnx", FILES[2].1),
            ("tokenizer.json", b"{}"),
            ("text.onnx.data", b"weights"),
        ];
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), manifest_with_text_weights(b"weights"), &files);
        match open(dir.path()).unwrap_err() {
            Error::Package(vtde_package::Error::UndeclaredExternalData {
                location,
                declared,
                ..
            }) => {
                assert_eq!(location, "other.bin");
                assert_eq!(declared.as_deref(), Some("text.onnx.data"));
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn the_tokenizer_is_hashed_from_format_3() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path(), sample_manifest(), FILES);
        let p = open(dir.path()).unwrap();
        assert!(p.tokenizer_is_hashed());
        std::fs::write(dir.path().join("tokenizer.json"), b"{ }").unwrap();
        match open(dir.path()).unwrap_err() {
            Error::ChecksumMismatch { path, .. } => assert!(path.ends_with("tokenizer.json")),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_format_2_package_opens_with_its_tokenizer_unhashed() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample_manifest();
        m.format_version = 2;
        m.tokenizer_sha256 = None;
        write_package(dir.path(), m, FILES);
        // A changed tokenizer is not noticed (there is no sha256 to compare with) ...
        std::fs::write(dir.path().join("tokenizer.json"), b"{ }").unwrap();
        let p = open(dir.path()).unwrap();
        assert!(!p.tokenizer_is_hashed());
        // ... but every graph still is.
        std::fs::write(dir.path().join("text.onnx"), b"\x12\x04TEXT").unwrap();
        match open(dir.path()).unwrap_err() {
            Error::ChecksumMismatch { path, .. } => assert!(path.ends_with("text.onnx")),
            other => panic!("unexpected {other}"),
        }
    }
}
