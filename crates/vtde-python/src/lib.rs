//! `vtde._vtde`: the Rust half of the `vtde` Python package (the wheel built by
//! `tools/build-wheel.sh` with maturin). `python/vtde/__init__.py` re-exports it and turns
//! PIL images into RGB arrays; `python/vtde/__init__.pyi` holds the types.
//!
//! Every call into the runtime runs with the GIL released (`Python::detach`), so Python
//! threads embed in parallel through one `Model` (which is `Send + Sync`). Runtime errors
//! become `vtde.VtdeError` with vtde's message; wrong argument types are `TypeError`, bad
//! values (an unknown provider, a zero-size array) `ValueError`. Results are numpy
//! `float32` arrays.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};
use vtde_runtime::image::{DynamicImage, RgbImage};
use vtde_runtime::{
    decode_image, read_image, ExecutionProvider, Model as RuntimeModel, Precision, RuntimeOptions,
};

create_exception!(
    _vtde,
    VtdeError,
    PyException,
    "An error from vtde: a package that cannot be opened, an image that cannot be read, \
     ONNX Runtime missing. The message says what and where."
);

/// A runtime error as a Python exception.
fn vtde_error(e: impl std::fmt::Display) -> PyErr {
    VtdeError::new_err(e.to_string())
}

/// One image as the caller gave it, copied out of Python objects so that the work can
/// run without the GIL.
enum ImageInput {
    File(PathBuf),
    Encoded(Vec<u8>),
    Pixels(DynamicImage),
}

impl ImageInput {
    /// Reads one item of `embed_images`' list: a path (`str` or `os.PathLike`), encoded
    /// bytes (`bytes`, `bytearray`), or a `uint8` array `[height, width, 3]`.
    fn extract(index: usize, item: &Bound<'_, PyAny>) -> PyResult<Self> {
        if item.is_instance_of::<PyString>() || item.hasattr("__fspath__")? {
            let path: PathBuf = item.extract()?;
            return Ok(ImageInput::File(path));
        }
        if let Ok(bytes) = item.cast::<PyBytes>() {
            return Self::encoded(index, bytes.as_bytes().to_vec());
        }
        if let Ok(bytes) = item.cast::<PyByteArray>() {
            return Self::encoded(index, bytes.to_vec());
        }
        if let Ok(array) = item.extract::<PyReadonlyArray3<'_, u8>>() {
            let shape = array.shape();
            let (height, width, channels) = (shape[0], shape[1], shape[2]);
            if channels != 3 || height == 0 || width == 0 {
                return Err(PyValueError::new_err(format!(
                    "images[{index}]: a uint8 array must be [height, width, 3] with both \
                     sides at least 1, not {shape:?}"
                )));
            }
            let too_big =
                || PyValueError::new_err(format!("images[{index}]: {shape:?} is too large"));
            let (w, h) = (
                u32::try_from(width).map_err(|_| too_big())?,
                u32::try_from(height).map_err(|_| too_big())?,
            );
            // Any strides: the view iterates in logical (row-major) order.
            let packed: Vec<u8> = array.as_array().iter().copied().collect();
            let image = RgbImage::from_raw(w, h, packed).ok_or_else(too_big)?;
            return Ok(ImageInput::Pixels(DynamicImage::ImageRgb8(image)));
        }
        if item.hasattr("__array_interface__")? {
            return Err(PyTypeError::new_err(format!(
                "images[{index}]: arrays must be uint8 with shape [height, width, 3]"
            )));
        }
        Err(PyTypeError::new_err(format!(
            "images[{index}]: expected a path, bytes, a PIL image or a uint8 numpy array, \
             not {}",
            item.get_type().name()?
        )))
    }

    fn encoded(index: usize, bytes: Vec<u8>) -> PyResult<Self> {
        if bytes.is_empty() {
            return Err(PyValueError::new_err(format!(
                "images[{index}]: the bytes are empty"
            )));
        }
        Ok(ImageInput::Encoded(bytes))
    }
}

/// Where an image list is embedded: every item a file goes through the streaming
/// pipeline (decoding on a thread pool, as the `vtde` command line does); a mixed list
/// is decoded item by item.
fn embed_inputs(
    model: &RuntimeModel,
    inputs: Vec<ImageInput>,
) -> Result<ndarray_out::Array2<f32>, String> {
    if inputs.iter().all(|i| matches!(i, ImageInput::File(_))) {
        let paths: Vec<PathBuf> = inputs
            .into_iter()
            .filter_map(|i| match i {
                ImageInput::File(p) => Some(p),
                _ => None,
            })
            .collect();
        let result = model.embed_image_files(&paths).map_err(|e| e.to_string())?;
        if let Some(Err(e)) = result.outcomes.into_iter().find(|o| o.is_err()) {
            return Err(e.to_string());
        }
        return Ok(result.embeddings);
    }
    let options = model.image_options();
    let images = inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            match input {
                ImageInput::File(path) => read_image(&path, options),
                ImageInput::Encoded(bytes) => decode_image(&bytes, options),
                ImageInput::Pixels(image) => Ok(image),
            }
            .map_err(|e| format!("images[{index}]: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    model.embed_images(&images).map_err(|e| e.to_string())
}

/// The ndarray types the runtime returns.
mod ndarray_out {
    pub use vtde_runtime::ndarray::Array2;
}

/// Parses `provider=`: one name or a list (`"cpu"`, `["cuda", "cpu"]`).
fn parse_providers(provider: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<ExecutionProvider>> {
    let Some(provider) = provider else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = if let Ok(name) = provider.extract::<String>() {
        name.split(',').map(|s| s.trim().to_string()).collect()
    } else {
        provider
            .extract()
            .map_err(|_| PyTypeError::new_err("provider must be a str or a list of str"))?
    };
    names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|name| {
            ExecutionProvider::from_name(name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "unknown execution provider {name:?}: expected cpu, cuda, cuda:N, \
                     tensorrt, tensorrt:N or coreml"
                ))
            })
        })
        .collect()
}

/// Scores of images against texts (what `Model.score` returns).
#[pyclass(module = "vtde", frozen, get_all)]
struct Scores {
    /// `[n_images, n_texts]` float32: `exp(logit_scale) * image · text`.
    logits_per_image: Py<PyArray2<f32>>,
    /// `[n_texts, n_images]` float32: the transpose.
    logits_per_text: Py<PyArray2<f32>>,
    /// `[n_images, n_texts]` float32: each image's softmax over the texts.
    probs_per_image: Py<PyArray2<f32>>,
    /// CLIP's contrastive loss when there are as many texts as images, else None.
    loss: Option<f32>,
}

#[pymethods]
impl Scores {
    fn __repr__(&self, py: Python<'_>) -> String {
        let shape = self.probs_per_image.bind(py).shape().to_vec();
        format!(
            "Scores(images={}, texts={}, loss={:?})",
            shape[0], shape[1], self.loss
        )
    }
}

/// A vtde model package opened for inference. Thread-safe: share one between threads.
#[pyclass(module = "vtde", frozen, subclass)]
struct Model {
    model: RuntimeModel,
}

#[pymethods]
impl Model {
    // Python's keyword arguments, one per option.
    #[allow(clippy::too_many_arguments)]
    #[new]
    #[pyo3(signature = (path, provider=None, threads=None, precision="fp32", exif_orientation=false, batch_size=32, onnxruntime_library=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        provider: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
        precision: &str,
        exif_orientation: bool,
        batch_size: usize,
        onnxruntime_library: Option<PathBuf>,
    ) -> PyResult<Self> {
        let precision = Precision::from_name(precision).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown precision {precision:?}: expected fp32, fp16 or int8"
            ))
        })?;
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let mut options = RuntimeOptions::default()
            .with_execution_providers(parse_providers(provider)?)
            .with_precision(precision)
            .with_batch_size(batch_size);
        options = options.clone().with_image_options(
            options
                .image
                .clone()
                .with_exif_orientation(exif_orientation),
        );
        if let Some(threads) = threads.filter(|&t| t > 0) {
            options = options.with_threads(threads);
        }
        if let Some(library) = onnxruntime_library {
            options = options.with_onnxruntime_library(library);
        }
        let model = py
            .detach(|| RuntimeModel::open(&path, &options))
            .map_err(vtde_error)?;
        Ok(Model { model })
    }

    /// The embedding width P.
    #[getter]
    fn embedding_dim(&self) -> usize {
        self.model.manifest().projection_dim
    }

    /// The package folder.
    #[getter]
    fn package_dir(&self) -> PathBuf {
        self.model.package_dir().to_path_buf()
    }

    /// Images → `[n, P]` float32 L2-normalized embeddings.
    fn embed_images<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        if images.is_instance_of::<PyString>() || images.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(
                "images must be a list (of paths, bytes, PIL images or arrays)",
            ));
        }
        let inputs = images
            .try_iter()?
            .enumerate()
            .map(|(index, item)| ImageInput::extract(index, &item?))
            .collect::<PyResult<Vec<_>>>()?;
        let embeddings = py
            .detach(|| embed_inputs(&self.model, inputs))
            .map_err(VtdeError::new_err)?;
        Ok(embeddings.into_pyarray(py))
    }

    /// Texts → `[m, P]` float32 L2-normalized embeddings.
    fn embed_texts<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        if texts.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "texts must be a list of str, not a str",
            ));
        }
        let texts: Vec<String> = texts
            .extract()
            .map_err(|_| PyTypeError::new_err("texts must be a list of str"))?;
        let embeddings = py
            .detach(|| self.model.embed_texts(&texts))
            .map_err(vtde_error)?;
        Ok(embeddings.into_pyarray(py))
    }

    /// One embedding per label: the mean of its prompt templates' text embeddings.
    #[pyo3(signature = (labels, templates=None))]
    fn embed_labels<'py>(
        &self,
        py: Python<'py>,
        labels: Vec<String>,
        templates: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let templates = templates.unwrap_or_else(|| vec!["{}".to_string()]);
        let embeddings = py
            .detach(|| self.model.embed_labels(&labels, &templates))
            .map_err(vtde_error)?;
        Ok(embeddings.into_pyarray(py))
    }

    /// Scores L2-normalized image embeddings `[n, P]` against text embeddings `[m, P]`.
    fn score(
        &self,
        py: Python<'_>,
        image_embeds: PyReadonlyArray2<'_, f32>,
        text_embeds: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Scores> {
        let (images, texts) = (image_embeds.as_array(), text_embeds.as_array());
        let scores = py
            .detach(|| self.model.score(images, texts))
            .map_err(vtde_error)?;
        Ok(Scores {
            logits_per_image: scores.logits_per_image.into_pyarray(py).unbind(),
            logits_per_text: scores.logits_per_text.into_pyarray(py).unbind(),
            probs_per_image: scores.probs_per_image.into_pyarray(py).unbind(),
            loss: scores.loss,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "vtde.Model({:?})",
            self.model.package_dir().display().to_string()
        )
    }
}

/// Exports a Hugging Face checkpoint folder to a package folder; `variants` adds
/// precision variants (`["int8"]`, `["fp16"]`). Returns the package folder.
#[pyfunction]
#[pyo3(signature = (checkpoint, out, variants=None))]
fn export(
    py: Python<'_>,
    checkpoint: PathBuf,
    out: PathBuf,
    variants: Option<Vec<String>>,
) -> PyResult<PathBuf> {
    let variants = variants
        .unwrap_or_default()
        .iter()
        .map(|name| {
            Precision::from_name(name).ok_or_else(|| {
                PyValueError::new_err(format!("unknown precision {name:?}: expected fp16 or int8"))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let options = vtde_export::ExportOptions::default().with_variants(variants);
    let exported = py
        .detach(|| vtde_export::export_with(&checkpoint, &out, &options, &mut |_| {}))
        .map_err(vtde_error)?;
    Ok(exported.dir)
}

/// The Rust extension of the `vtde` package.
#[pymodule]
fn _vtde(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_class::<Scores>()?;
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add("VtdeError", m.py().get_type::<VtdeError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
