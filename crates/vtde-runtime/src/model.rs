//! The public entry point: a loaded package, ready to embed images and texts and to
//! score them.
//!
//! [`Model`] is `Send + Sync` and every method takes `&self`: one model serves many
//! threads. Preprocessing runs on the calling thread (or, for image files, on the
//! streaming pipeline's pool: [`Model::stream_image_files`]); graph runs go through
//! per-graph session pools (`session`).
//!
//! The lower-level steps are public too, so that a caller can overlap decoding,
//! preprocessing and inference, or compare intermediate values with transformers:
//! [`Model::preprocess_images`] → [`Model::image_features`] → [`Model::project`] →
//! [`l2_normalize`](crate::l2_normalize) is what [`Model::embed_images`]
//! does, in batches of [`RuntimeOptions::batch_size`].
//!
//! Empty inputs are fine everywhere: zero images or texts give `[0, D]` arrays without
//! running a graph.

use std::path::Path;

use image::DynamicImage;
use ndarray::{concatenate, Array2, Array4, ArrayView2, ArrayView4, Axis, CowArray};
use ort::value::TensorRef;
use vtde_package::{names, GraphKind, Manifest, Precision};

use crate::error::{Error, Result};
use crate::onnxruntime::{self, OnnxRuntime};
use crate::options::RuntimeOptions;
use crate::package::Package;
use crate::pipeline::{ImageBatch, ImageSource};
use crate::preprocess::image::{ImageOptions, ImagePreprocessor};
use crate::preprocess::text::{TextBatch, TextTokenizer};
use crate::session::{
    run_f32_2d, ExecutionProvider, GraphContract, GraphPlacement, GraphTarget, SessionPool,
};
use crate::similarity::{self, Scores};

/// Returns memory freed while loading (file buffers, initializers replaced by prepacked
/// weights: hundreds of MB for a base-size model) to the system. glibc keeps freed heap
/// memory in its arenas, so without this the process stays at about twice the graphs'
/// size after opening a package, against the design's bound of 1.5× (`docs/design.md`).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's heap to the kernel; it has
    // no preconditions and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A loaded model package. See the module documentation.
#[derive(Debug)]
pub struct Model {
    package: Package,
    runtime: &'static OnnxRuntime,
    image: ImagePreprocessor,
    tokenizer: TextTokenizer,
    vision: SessionPool,
    text: SessionPool,
    projection: SessionPool,
    batch_size: usize,
    image_options: ImageOptions,
}

impl Model {
    /// Opens the package in `package_dir`: reads and checks the manifest, verifies the
    /// graphs' checksums (unless turned off), loads the tokenizer and ONNX Runtime, and
    /// creates one session per graph, checking each graph's inputs and outputs. Checksums
    /// and sessions are done in parallel.
    pub fn open(package_dir: impl AsRef<Path>, options: &RuntimeOptions) -> Result<Self> {
        let precision = options.package.precision;
        if precision == Precision::Int8 {
            if let Some(ep) = options
                .execution_providers
                .iter()
                .find(|ep| !ep.runs_int8())
            {
                return Err(Error::PrecisionNotForProvider {
                    precision,
                    provider: ep.name(),
                });
            }
        }
        let package = Package::open_unverified(package_dir.as_ref(), &options.package)?;
        let manifest = package.manifest();
        let tokenizer = TextTokenizer::from_file(&package.tokenizer_path(), &manifest.text)
            .map_err(|e| package.explain_tokenizer_error(e, options.package.verify_checksums))?;
        let image = ImagePreprocessor::new(&manifest.image);
        let wants_gpu = options.execution_providers.iter().any(|ep| {
            matches!(
                ep,
                ExecutionProvider::Cuda { .. } | ExecutionProvider::TensorRt(_)
            )
        });
        let runtime = onnxruntime::load_preferring_gpu(
            options.onnxruntime_library.as_deref(),
            wants_gpu,
            options.wanted_shared_pool(),
        )?;
        let mut config = options.session_config();
        config.shared_pool = options.fits_shared_pool(runtime.shared_pool());
        let targets = graph_targets(&package, options)?;
        let contracts = GraphKind::ALL
            .into_iter()
            .zip(targets)
            .map(|(kind, target)| {
                let contract = GraphContract {
                    inputs: kind.inputs(manifest),
                    outputs: kind.outputs().iter().map(|&o| o.to_owned()).collect(),
                    target,
                    specs: kind.tensor_specs(manifest),
                };
                (kind, contract)
            });
        // Sessions are created one after another: in parallel they were not faster here
        // (loading is bound by memory bandwidth) and their transient buffers (file bytes,
        // parsed initializers, prepacked weights) added up to a peak near twice the
        // graphs' size. Checksums are verified meanwhile on another thread.
        let (checksums, pools) = std::thread::scope(|scope| {
            let checksums = options.package.verify_checksums.then(|| {
                scope.spawn(|| {
                    package.verify_checksums(options.package.checksum_cache_dir.as_deref())
                })
            });
            let mut pools: Vec<Result<SessionPool>> = Vec::new();
            for (kind, contract) in contracts {
                let path = package.graph_path(kind);
                let pool = SessionPool::new(runtime, kind, &path, &config, contract);
                release_freed_memory();
                let failed = pool.is_err();
                pools.push(pool);
                if failed {
                    break;
                }
            }
            let checksums = match checksums {
                Some(h) => h.join().unwrap_or_else(|_| {
                    Err(Error::OnnxRuntimeInit {
                        path: runtime.library_path().to_path_buf(),
                        message: "checksum thread panicked".into(),
                    })
                }),
                None => Ok(()),
            };
            (checksums, pools)
        });
        // A damaged package is the more useful message than whatever ONNX Runtime said
        // about the damaged graph.
        checksums?;
        let mut pools = pools.into_iter();
        let mut next = || {
            pools.next().unwrap_or_else(|| {
                Err(Error::OnnxRuntimeInit {
                    path: runtime.library_path().to_path_buf(),
                    message: "session pool missing".into(),
                })
            })
        };
        let vision = next()?;
        let text = next()?;
        let projection = next()?;
        Ok(Model {
            package,
            runtime,
            image,
            tokenizer,
            vision,
            text,
            projection,
            batch_size: options.batch_size.max(1),
            image_options: options.image.clone(),
        })
    }

    /// The package manifest.
    pub fn manifest(&self) -> &Manifest {
        self.package.manifest()
    }

    /// The package directory.
    pub fn package_dir(&self) -> &Path {
        self.package.dir()
    }

    /// The opened package (its files, the precision in use).
    pub fn package(&self) -> &Package {
        &self.package
    }

    /// Where each graph runs (vision, text, projection): the provider that took it, where
    /// ONNX Runtime placed its nodes, and what fell back to the CPU and why.
    pub fn placements(&self) -> [&GraphPlacement; 3] {
        [
            self.vision.placement(),
            self.text.placement(),
            self.projection.placement(),
        ]
    }

    /// Whether the graphs run on the process-wide thread pool
    /// ([`RuntimeOptions::shared_thread_pool`]) rather than on pools of their own.
    pub fn shares_thread_pool(&self) -> bool {
        self.vision.shares_thread_pool()
    }

    /// The ONNX Runtime library in use.
    pub fn onnxruntime_library(&self) -> &Path {
        self.runtime.library_path()
    }

    /// The image preprocessor (for preprocessing batch items on several threads with
    /// [`ImagePreprocessor::preprocess_into`]).
    pub fn image_preprocessor(&self) -> &ImagePreprocessor {
        &self.image
    }

    /// Items per graph run and images per pipeline batch ([`RuntimeOptions::batch_size`]).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// How this model reads image files ([`RuntimeOptions::image`]).
    pub fn image_options(&self) -> &ImageOptions {
        &self.image_options
    }

    /// Streams image files through the decoding pool (see the `pipeline` module docs):
    /// `consume` gets each run of [`RuntimeOptions::batch_size`] consecutive inputs as
    /// one [`ImageBatch`] (its good images' `pixel_values` and its failed inputs), in
    /// input order, while [`ImageOptions::threads`] threads decode the next ones. Memory
    /// is bounded: decoders wait when they are a batch ahead. A bad file fails only its
    /// item; an error from `consume` stops the stream and is returned.
    ///
    /// ```no_run
    /// # fn main() -> vtde_runtime::Result<()> {
    /// use vtde_runtime::{Model, RuntimeOptions};
    ///
    /// let model = Model::open("package", &RuntimeOptions::default())?;
    /// let files = vec![std::path::PathBuf::from("a.jpg"), "b.png".into()];
    /// model.stream_image_files(&files, |batch| {
    ///     let embeddings = model.embed_pixel_values(batch.pixel_values())?;
    ///     for (&input, row) in batch.items.iter().zip(embeddings.rows()) {
    ///         println!("{}: {} values", files[input].display(), row.len());
    ///     }
    ///     for (input, error) in &batch.failures {
    ///         eprintln!("{}: {error}", files[*input].display());
    ///     }
    ///     Ok::<(), vtde_runtime::Error>(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream_image_files<S, E>(
        &self,
        sources: &[S],
        consume: impl FnMut(ImageBatch) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        S: ImageSource,
        E: From<Error>,
    {
        self.image
            .stream_files(sources, &self.image_options, self.batch_size, consume)
    }

    /// Image files → L2-normalized embeddings, through [`Model::stream_image_files`]. A
    /// file that cannot be read, decoded or preprocessed is reported in `outcomes` and
    /// skipped; inference errors fail the call. The embeddings of all files are collected
    /// in memory: for large folders, stream them instead.
    pub fn embed_image_files<S: ImageSource>(&self, paths: &[S]) -> Result<ImageFileEmbeddings> {
        let mut parts = Vec::new();
        let mut outcomes: Vec<Option<Result<usize>>> = (0..paths.len()).map(|_| None).collect();
        let mut rows = 0;
        self.stream_image_files(paths, |batch| {
            let embeddings = self.embed_pixel_values(batch.pixel_values())?;
            for &input in &batch.items {
                outcomes[input] = Some(Ok(rows));
                rows += 1;
            }
            for (input, error) in batch.failures {
                outcomes[input] = Some(Err(error));
            }
            parts.push(embeddings);
            Ok::<(), Error>(())
        })?;
        let outcomes = outcomes
            .into_iter()
            .zip(paths)
            .map(|(outcome, source)| {
                outcome.unwrap_or_else(|| {
                    Err(Error::ImageUnavailable {
                        path: source.path().to_path_buf(),
                        message: "the image was not processed".into(),
                    })
                })
            })
            .collect();
        Ok(ImageFileEmbeddings {
            embeddings: stack_rows(parts, self.manifest().projection_dim)?,
            outcomes,
        })
    }

    /// `pixel_values` `[n, 3, H, W]` → projected, L2-normalized embeddings `[n, P]`, in
    /// batches of [`RuntimeOptions::batch_size`] (what [`Model::embed_images`] does after
    /// preprocessing).
    pub fn embed_pixel_values(&self, pixel_values: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        let m = self.manifest();
        let no_text = Array2::<f32>::zeros((0, m.graphs.text.output_dim));
        let mut parts = Vec::new();
        for chunk in pixel_values.axis_chunks_iter(Axis(0), self.batch_size) {
            let features = self.image_features(chunk)?;
            let (embeds, _) = self.project(features.view(), no_text.view())?;
            parts.push(similarity::l2_normalize(embeds.view()));
        }
        stack_rows(parts, m.projection_dim)
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Number of sessions created so far for a graph.
    pub fn sessions_created(&self, graph: GraphKind) -> usize {
        match graph {
            GraphKind::Vision => self.vision.sessions_created(),
            GraphKind::Text => self.text.sessions_created(),
            GraphKind::Projection => self.projection.sessions_created(),
        }
    }

    /// Images → `pixel_values`, `[n, 3, height, width]`.
    pub fn preprocess_images(&self, images: &[DynamicImage]) -> Result<Array4<f32>> {
        self.image.preprocess_batch(images)
    }

    /// Texts → `input_ids`, `attention_mask`, `token_type_ids`, padded to the longest.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<TextBatch> {
        self.tokenizer.tokenize(texts)
    }

    /// Runs `vision.onnx`: `pixel_values` `[n, 3, H, W]` → `image_features` `[n, Dv]`.
    pub fn image_features(&self, pixel_values: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        let m = self.manifest();
        let (h, w) = (m.image.height as usize, m.image.width as usize);
        let shape = pixel_values.shape();
        if shape[1..] != [3, h, w] {
            return Err(Error::bad_shape(
                "pixel_values",
                format!("[n, 3, {h}, {w}]"),
                shape,
            ));
        }
        let dv = m.graphs.vision.output_dim;
        let n = shape[0];
        if n == 0 {
            return Ok(Array2::zeros((0, dv)));
        }
        let pixels: CowArray<'_, f32, _> = pixel_values.as_standard_layout();
        let out = self.vision.with_session(|session| {
            let input = tensor(GraphKind::Vision, &pixels)?;
            run_f32_2d(
                GraphKind::Vision,
                session,
                vec![(names::PIXEL_VALUES, input.into())],
                &[names::IMAGE_FEATURES],
            )
        })?;
        take_one(GraphKind::Vision, out, names::IMAGE_FEATURES, (n, dv))
    }

    /// Runs `text.onnx` on a tokenized batch → `text_features` `[m, Dt]`.
    /// `token_type_ids` is fed only when the manifest lists it as a text input.
    pub fn text_features(&self, batch: &TextBatch) -> Result<Array2<f32>> {
        let m = self.manifest();
        let dt = m.graphs.text.output_dim;
        let shape = batch.input_ids.shape();
        for (what, a) in [
            ("attention_mask", &batch.attention_mask),
            ("token_type_ids", &batch.token_type_ids),
        ] {
            if a.shape() != shape {
                return Err(Error::bad_shape(
                    what,
                    format!("{shape:?} like input_ids"),
                    a.shape(),
                ));
            }
        }
        let (n, seq) = (shape[0], shape[1]);
        if n == 0 {
            return Ok(Array2::zeros((0, dt)));
        }
        if seq == 0 || seq > m.text.max_length {
            return Err(Error::bad_shape(
                "input_ids",
                format!("[m, 1..={}]", m.text.max_length),
                shape,
            ));
        }
        let with_types = m.text.inputs.iter().any(|i| i == names::TOKEN_TYPE_IDS);
        let ids = batch.input_ids.as_standard_layout();
        let mask = batch.attention_mask.as_standard_layout();
        let types = batch.token_type_ids.as_standard_layout();
        let out = self.text.with_session(|session| {
            let mut inputs = vec![
                (names::INPUT_IDS, tensor(GraphKind::Text, &ids)?.into()),
                (
                    names::ATTENTION_MASK,
                    tensor(GraphKind::Text, &mask)?.into(),
                ),
            ];
            if with_types {
                inputs.push((
                    names::TOKEN_TYPE_IDS,
                    tensor(GraphKind::Text, &types)?.into(),
                ));
            }
            run_f32_2d(GraphKind::Text, session, inputs, &[names::TEXT_FEATURES])
        })?;
        take_one(GraphKind::Text, out, names::TEXT_FEATURES, (n, dt))
    }

    /// Runs `projection.onnx`: image features `[n, Dv]` and text features `[m, Dt]` →
    /// `(image_embeds [n, P], text_embeds [m, P])`, projected but not normalized. Either
    /// `n` or `m` may be 0.
    pub fn project(
        &self,
        image_features: ArrayView2<'_, f32>,
        text_features: ArrayView2<'_, f32>,
    ) -> Result<(Array2<f32>, Array2<f32>)> {
        let m = self.manifest();
        let (dv, dt, p) = (
            m.graphs.vision.output_dim,
            m.graphs.text.output_dim,
            m.projection_dim,
        );
        if image_features.ncols() != dv {
            return Err(Error::bad_shape(
                "image_features",
                format!("[n, {dv}]"),
                image_features.shape(),
            ));
        }
        if text_features.ncols() != dt {
            return Err(Error::bad_shape(
                "text_features",
                format!("[m, {dt}]"),
                text_features.shape(),
            ));
        }
        let (n, t) = (image_features.nrows(), text_features.nrows());
        if n == 0 && t == 0 {
            return Ok((Array2::zeros((0, p)), Array2::zeros((0, p))));
        }
        // ONNX Runtime 1.31 accepts zero-row tensors for a MatMul projection (tested),
        // but an exported graph may hold ops that do not; so an empty side is replaced
        // by one zero row whose output is dropped. It costs one row of a matmul.
        let dummy_img = Array2::<f32>::zeros((1, dv));
        let dummy_txt = Array2::<f32>::zeros((1, dt));
        let img = if n == 0 {
            CowArray::from(dummy_img.view())
        } else {
            image_features.as_standard_layout()
        };
        let txt = if t == 0 {
            CowArray::from(dummy_txt.view())
        } else {
            text_features.as_standard_layout()
        };
        let mut out = self.projection.with_session(|session| {
            let inputs = vec![
                (
                    names::IMAGE_FEATURES,
                    tensor(GraphKind::Projection, &img)?.into(),
                ),
                (
                    names::TEXT_FEATURES,
                    tensor(GraphKind::Projection, &txt)?.into(),
                ),
            ];
            run_f32_2d(
                GraphKind::Projection,
                session,
                inputs,
                &[names::IMAGE_EMBEDS, names::TEXT_EMBEDS],
            )
        })?;
        let text_embeds = out.pop();
        let image_embeds = out.pop();
        let (Some(image_embeds), Some(text_embeds)) = (image_embeds, text_embeds) else {
            return Err(Error::Inference {
                graph: GraphKind::Projection,
                message: "missing outputs".into(),
            });
        };
        let image_embeds = check_shape(
            GraphKind::Projection,
            names::IMAGE_EMBEDS,
            image_embeds,
            (n.max(1), p),
        )?;
        let text_embeds = check_shape(
            GraphKind::Projection,
            names::TEXT_EMBEDS,
            text_embeds,
            (t.max(1), p),
        )?;
        let image_embeds = if n == 0 {
            Array2::zeros((0, p))
        } else {
            image_embeds
        };
        let text_embeds = if t == 0 {
            Array2::zeros((0, p))
        } else {
            text_embeds
        };
        Ok((image_embeds, text_embeds))
    }

    /// Images → projected, L2-normalized embeddings `[n, P]`, in batches of
    /// [`RuntimeOptions::batch_size`].
    pub fn embed_images(&self, images: &[DynamicImage]) -> Result<Array2<f32>> {
        let mut parts = Vec::new();
        for (c, chunk) in images.chunks(self.batch_size).enumerate() {
            let pixels = self.preprocess_images(chunk).map_err(|e| match e {
                Error::ImagePreprocess { index, message } => Error::ImagePreprocess {
                    index: index + c * self.batch_size,
                    message,
                },
                other => other,
            })?;
            parts.push(self.embed_pixel_values(pixels.view())?);
        }
        stack_rows(parts, self.manifest().projection_dim)
    }

    /// Texts → projected, L2-normalized embeddings `[m, P]`, in batches of
    /// [`RuntimeOptions::batch_size`] (each padded to its own longest text).
    pub fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>> {
        let m = self.manifest();
        let no_images = Array2::<f32>::zeros((0, m.graphs.vision.output_dim));
        let mut parts = Vec::new();
        for chunk in texts.chunks(self.batch_size) {
            let batch = self.tokenize(chunk)?;
            let features = self.text_features(&batch)?;
            let (_, embeds) = self.project(no_images.view(), features.view())?;
            parts.push(similarity::l2_normalize(embeds.view()));
        }
        stack_rows(parts, m.projection_dim)
    }

    /// Logits both ways, per-image probabilities over the texts, and the contrastive
    /// loss when there are as many texts as images. Takes L2-normalized embeddings, as
    /// [`Model::embed_images`] and [`Model::embed_texts`] return them. Fails if the two
    /// embedding widths differ, and with [`Error::NonFiniteScore`] if a logit or
    /// probability is not finite (a zero or non-finite embedding): scores are never NaN.
    pub fn score(
        &self,
        image_embeds: ArrayView2<'_, f32>,
        text_embeds: ArrayView2<'_, f32>,
    ) -> Result<Scores> {
        similarity::scores(image_embeds, text_embeds, self.manifest().logit_scale)
    }
}

/// What [`Model::embed_image_files`] returns.
#[derive(Debug)]
pub struct ImageFileEmbeddings {
    /// `[k, P]`: L2-normalized embeddings of the files that succeeded, in input order.
    pub embeddings: Array2<f32>,
    /// One entry per input path: `Ok(row)` (its row in `embeddings`) or why it failed.
    pub outcomes: Vec<Result<usize>>,
}

/// What each graph's session needs for the providers asked for: TensorRT's shape profiles
/// and engine cache folders (see [`crate::TensorRtOptions`]). Empty without TensorRT.
fn graph_targets(package: &Package, options: &RuntimeOptions) -> Result<[GraphTarget; 3]> {
    let Some(trt) = options.execution_providers.iter().find_map(|ep| match ep {
        ExecutionProvider::TensorRt(o) => Some(o),
        _ => None,
    }) else {
        return Ok(Default::default());
    };
    let m = package.manifest();
    // The profile always covers the run's batch.
    let max = trt.max_batch.max(options.batch_size).max(1);
    let opt = options.batch_size.clamp(1, max);
    let seq = m.text.max_length;
    // Captions are short: TensorRT tunes its kernels for 77 tokens (CLIP's context) or
    // the tower's maximum when shorter.
    let opt_seq = seq.min(77);
    let (h, w) = (m.image.height, m.image.width);
    let (dv, dt) = (m.graphs.vision.output_dim, m.graphs.text.output_dim);
    let shapes = |kind: GraphKind, batch: usize, len: usize| -> String {
        match kind {
            GraphKind::Vision => format!("{}:{batch}x3x{h}x{w}", names::PIXEL_VALUES),
            GraphKind::Text => m
                .text
                .inputs
                .iter()
                .map(|i| format!("{i}:{batch}x{len}"))
                .collect::<Vec<_>>()
                .join(","),
            GraphKind::Projection => format!(
                "{}:{batch}x{dv},{}:{batch}x{dt}",
                names::IMAGE_FEATURES,
                names::TEXT_FEATURES
            ),
        }
    };
    let cache_root = trt
        .cache_dir
        .clone()
        .or_else(|| crate::checksum_cache::default_dir().map(|d| d.join("tensorrt")));
    let manifest_sha = if trt.cache && cache_root.is_some() {
        vtde_package::sha256_file(&package.dir().join(vtde_package::MANIFEST_FILE))?
    } else {
        String::new()
    };
    let ort_version =
        crate::onnxruntime::onnxruntime_info(options.onnxruntime_library.as_deref())?.version;
    Ok(GraphKind::ALL.map(|kind| {
        let profile = [
            shapes(kind, 1, 1),
            shapes(kind, opt, opt_seq),
            shapes(kind, max, seq),
        ];
        let precision = match kind {
            GraphKind::Projection => Precision::Fp32,
            _ => package.precision(),
        };
        let (engine_cache, timing_cache) = match (&cache_root, trt.cache) {
            (Some(root), true) => {
                let key = vtde_package::sha256_bytes(
                    format!(
                        "{manifest_sha}|{}|{precision}|{}|{}|{}|fp16={}|onnxruntime {ort_version}",
                        kind.name(),
                        profile[0],
                        profile[1],
                        profile[2],
                        trt.fp16
                    )
                    .as_bytes(),
                );
                (
                    Some(
                        root.join("engines")
                            .join(format!("{}-{}", kind.name(), &key[..16])),
                    ),
                    Some(root.join("timing")),
                )
            }
            _ => (None, None),
        };
        GraphTarget {
            profile: Some(profile),
            engine_cache,
            timing_cache,
        }
    }))
}

fn tensor<'a, T, D>(graph: GraphKind, array: &'a CowArray<'a, T, D>) -> Result<TensorRef<'a, T>>
where
    T: ort::value::PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static,
    D: ndarray::Dimension + 'static,
{
    TensorRef::from_array_view(array.view()).map_err(|e| Error::Inference {
        graph,
        message: format!("cannot create an input tensor: {e}"),
    })
}

fn take_one(
    graph: GraphKind,
    mut out: Vec<Array2<f32>>,
    name: &str,
    expected: (usize, usize),
) -> Result<Array2<f32>> {
    let array = out.pop().ok_or_else(|| Error::Inference {
        graph,
        message: format!("output `{name}` missing"),
    })?;
    check_shape(graph, name, array, expected)
}

fn check_shape(
    graph: GraphKind,
    name: &str,
    array: Array2<f32>,
    expected: (usize, usize),
) -> Result<Array2<f32>> {
    if array.dim() == expected {
        Ok(array)
    } else {
        Err(Error::Inference {
            graph,
            message: format!(
                "output `{name}` has shape {:?}, the manifest implies {expected:?}",
                array.shape()
            ),
        })
    }
}

fn stack_rows(parts: Vec<Array2<f32>>, width: usize) -> Result<Array2<f32>> {
    match parts.len() {
        0 => Ok(Array2::zeros((0, width))),
        1 => Ok(parts
            .into_iter()
            .next()
            .unwrap_or_else(|| Array2::zeros((0, width)))),
        _ => {
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            concatenate(Axis(0), &views)
                .map_err(|e| Error::bad_shape("embeddings", "equal widths", e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Model>();
    }
}
