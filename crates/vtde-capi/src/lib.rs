//! vtde's C ABI: `include/vtde.h` (generated from this crate by cbindgen, committed, and
//! checked by `tests/header.rs`), built as `libvtde.so` / `libvtde.dylib` / `vtde.dll`
//! and `libvtde.a`. It wraps [`vtde_runtime`]; the C, C++, Swift and C# callers get the
//! same preprocessing and numbers as the Rust library and the `vtde` command line.
//!
//! The contract, also in `crates/vtde-capi/README.md`:
//!
//! - **Errors.** Every function that can fail returns a [`VtdeStatus`]; on failure
//!   [`vtde_last_error_message`] gives the message (per thread, valid until that thread's
//!   next vtde call). No Rust panic crosses the boundary: each entry point catches it
//!   and returns [`VtdeStatus::Internal`]. Bad arguments (NULL pointers, zero sizes, a
//!   stride shorter than a row, text that is not UTF-8) are
//!   [`VtdeStatus::InvalidArgument`], never a crash; outputs are emptied first, so they
//!   can be freed whatever the status.
//! - **Ownership.** Handles ([`VtdeModel`], [`VtdeOptions`]) are made by vtde and freed by
//!   their `*_free` function; results ([`VtdeMatrix`], [`VtdeScores`]) are filled in
//!   caller-provided structs and their floats are freed by [`vtde_matrix_free`] /
//!   [`vtde_scores_free`]. Every `*_free` accepts NULL and empty results. Input pointers
//!   are only read during the call.
//! - **Threads.** A [`VtdeModel`] may be used by many threads at once (the runtime's
//!   [`Model`] is `Send + Sync`, with a pool of ONNX Runtime sessions per graph); results
//!   do not depend on how many threads run. A [`VtdeOptions`] is not synchronised: do not
//!   change one while another thread uses it.
//!
//! Modules: `error` (status codes, the thread-local message, the `catch_unwind` guard)
//! and `buffers` (result matrices and the checked readers of the caller's pointers).

mod buffers;
mod error;

use std::ffi::c_char;
use std::path::PathBuf;

use vtde_runtime::image::{DynamicImage, RgbImage};
use vtde_runtime::ndarray::ArrayView2;
use vtde_runtime::{decode_image, ExecutionProvider, Model, Precision, RuntimeOptions};

pub use buffers::{VtdeMatrix, VtdeScores};
pub use error::VtdeStatus;

use buffers::{non_null, path, slice, utf8, write};
use error::{guard, CError};

/// An open model package. Made by [`vtde_model_open`], freed by [`vtde_model_free`];
/// safe to use from many threads at once.
pub struct VtdeModel {
    model: Model,
}

/// How [`vtde_model_open`] opens a package: threads, execution providers, precision,
/// EXIF orientation, the ONNX Runtime library. Made by [`vtde_options_new`] (defaults:
/// CPU, fp32, ONNX Runtime's thread count, pixels as stored), freed by
/// [`vtde_options_free`].
pub struct VtdeOptions {
    options: RuntimeOptions,
}

/// One RGB8 image in the caller's memory: `height` rows of `width` pixels, 3 bytes each
/// (R, G, B), each row starting `stride` bytes after the previous one (`stride >= 3 *
/// width`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VtdeRgbImage {
    /// The first byte of the first row.
    pub pixels: *const u8,
    /// Pixels per row (at least 1).
    pub width: u32,
    /// Rows (at least 1).
    pub height: u32,
    /// Bytes from the start of one row to the next (at least `3 * width`).
    pub stride: usize,
}

/// The version of this library, e.g. `"0.1.0"` (a static string; do not free).
#[no_mangle]
pub extern "C" fn vtde_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The message of this thread's last failed vtde call, or `""` after a successful one.
/// Valid until this thread's next vtde call; never NULL; do not free.
#[no_mangle]
pub extern "C" fn vtde_last_error_message() -> *const c_char {
    error::last_error_ptr()
}

/// New options with the defaults. Never NULL (aborts only if memory runs out).
#[no_mangle]
pub extern "C" fn vtde_options_new() -> *mut VtdeOptions {
    Box::into_raw(Box::new(VtdeOptions {
        options: RuntimeOptions::default(),
    }))
}

/// Frees options made by [`vtde_options_new`]. NULL is ignored.
///
/// # Safety
/// `options` is NULL or from [`vtde_options_new`], not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vtde_options_free(options: *mut VtdeOptions) {
    if !options.is_null() {
        // SAFETY: the caller guarantees it came from `vtde_options_new` (Box::into_raw).
        drop(unsafe { Box::from_raw(options) });
    }
}

/// Runs `change` on the options behind `options`.
///
/// Private: `options` comes straight from an entry point whose caller guarantees that it
/// is NULL or a live [`VtdeOptions`] no other thread is using.
fn change_options(
    options: *mut VtdeOptions,
    change: impl FnOnce(&mut RuntimeOptions) -> Result<(), CError>,
) -> VtdeStatus {
    guard(|| {
        // SAFETY: the caller guarantees a live, unshared handle or NULL.
        let options =
            unsafe { options.as_mut() }.ok_or_else(|| CError::invalid("options is NULL"))?;
        change(&mut options.options)
    })
}

/// Threads inside each ONNX Runtime operator, per session (0: ONNX Runtime's default, one
/// per physical core).
///
/// # Safety
/// `options` is NULL or a live [`VtdeOptions`] no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn vtde_options_set_threads(
    options: *mut VtdeOptions,
    threads: usize,
) -> VtdeStatus {
    change_options(options, |o| {
        o.intra_op_threads = (threads > 0).then_some(threads);
        Ok(())
    })
}

/// Images or texts per graph run (default 32; at least 1).
///
/// # Safety
/// `options` is NULL or a live [`VtdeOptions`] no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn vtde_options_set_batch_size(
    options: *mut VtdeOptions,
    batch_size: usize,
) -> VtdeStatus {
    change_options(options, |o| {
        if batch_size == 0 {
            return Err(CError::invalid("batch_size must be at least 1"));
        }
        *o = o.clone().with_batch_size(batch_size);
        Ok(())
    })
}

/// Execution providers in order of preference, comma-separated: `cpu`, `cuda`, `cuda:N`,
/// `tensorrt`, `tensorrt:N`, `coreml` (case-insensitive). Empty: the CPU. A provider
/// that cannot start makes [`vtde_model_open`] fail unless `cpu` is in the list.
///
/// # Safety
/// `options` as [`vtde_options_set_threads`]; `providers` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn vtde_options_set_providers(
    options: *mut VtdeOptions,
    providers: *const c_char,
) -> VtdeStatus {
    change_options(options, |o| {
        // SAFETY: the caller guarantees a NUL-terminated string or NULL.
        let list = unsafe { utf8(providers, "providers") }?;
        let parsed = parse_providers(list)?;
        *o = o.clone().with_execution_providers(parsed);
        Ok(())
    })
}

/// `"cuda, cpu"` → providers; an unknown name is an error listing the known ones.
fn parse_providers(list: &str) -> Result<Vec<ExecutionProvider>, CError> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            ExecutionProvider::from_name(name).ok_or_else(|| {
                CError::invalid(format!(
                    "unknown execution provider {name:?}: expected cpu, cuda, cuda:N, \
                     tensorrt, tensorrt:N or coreml"
                ))
            })
        })
        .collect()
}

/// The precision of the towers to run: `fp32` (default), `fp16` or `int8`; the package
/// must hold that variant (`vtde export --precision`).
///
/// # Safety
/// As [`vtde_options_set_providers`].
#[no_mangle]
pub unsafe extern "C" fn vtde_options_set_precision(
    options: *mut VtdeOptions,
    precision: *const c_char,
) -> VtdeStatus {
    change_options(options, |o| {
        // SAFETY: the caller guarantees a NUL-terminated string or NULL.
        let name = unsafe { utf8(precision, "precision") }?;
        let precision = Precision::from_name(name).ok_or_else(|| {
            CError::invalid(format!(
                "unknown precision {name:?}: expected fp32, fp16 or int8"
            ))
        })?;
        *o = o.clone().with_precision(precision);
        Ok(())
    })
}

/// Whether images are rotated and flipped as their EXIF orientation says (default
/// false: pixels as stored, as transformers' processors see a `PIL.Image.open` image).
///
/// # Safety
/// As [`vtde_options_set_threads`].
#[no_mangle]
pub unsafe extern "C" fn vtde_options_set_exif_orientation(
    options: *mut VtdeOptions,
    apply: bool,
) -> VtdeStatus {
    change_options(options, |o| {
        *o = o
            .clone()
            .with_image_options(o.image.clone().with_exif_orientation(apply));
        Ok(())
    })
}

/// The ONNX Runtime 1.31 library file (or a folder holding it). Not set: the file that
/// `ORT_DYLIB_PATH` names, else beside the executable, else the vtde cache folders (see
/// `RuntimeOptions::onnxruntime_library` in vtde-runtime). The library is loaded once
/// per process, by the first [`vtde_model_open`].
///
/// # Safety
/// As [`vtde_options_set_providers`].
#[no_mangle]
pub unsafe extern "C" fn vtde_options_set_onnxruntime_library(
    options: *mut VtdeOptions,
    library: *const c_char,
) -> VtdeStatus {
    change_options(options, |o| {
        // SAFETY: the caller guarantees a NUL-terminated string or NULL.
        let library = unsafe { path(library, "library") }?;
        *o = o.clone().with_onnxruntime_library(library);
        Ok(())
    })
}

/// Opens the package in the folder `package_dir` (with `options`, or the defaults when
/// `options` is NULL) and stores the handle in `*model` (NULL on failure). Free it with
/// [`vtde_model_free`].
///
/// # Safety
/// `package_dir` is NULL or a NUL-terminated string; `options` is NULL or live; `model`
/// is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn vtde_model_open(
    package_dir: *const c_char,
    options: *const VtdeOptions,
    model: *mut *mut VtdeModel,
) -> VtdeStatus {
    guard(|| {
        if model.is_null() {
            return Err(CError::invalid("model (the output) is NULL"));
        }
        // SAFETY: checked non-null; the caller guarantees it is valid for writes.
        unsafe { write(model, std::ptr::null_mut()) };
        // SAFETY: the caller guarantees a NUL-terminated string or NULL.
        let dir: PathBuf = unsafe { path(package_dir, "package_dir") }?;
        // SAFETY: the caller guarantees NULL or a live handle.
        let options = match unsafe { options.as_ref() } {
            Some(o) => o.options.clone(),
            None => RuntimeOptions::default(),
        };
        let opened = Model::open(&dir, &options)?;
        // SAFETY: as above.
        unsafe { write(model, Box::into_raw(Box::new(VtdeModel { model: opened }))) };
        Ok(())
    })
}

/// Frees a model (its sessions and memory). NULL is ignored. No other thread may be
/// using it.
///
/// # Safety
/// `model` is NULL or from [`vtde_model_open`], not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vtde_model_free(model: *mut VtdeModel) {
    if !model.is_null() {
        // Dropping ONNX Runtime sessions runs C++ code; a panic must still not unwind.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: the caller guarantees it came from `vtde_model_open` (Box::into_raw).
            drop(unsafe { Box::from_raw(model) });
        }));
    }
}

/// The embedding width P (the columns of every embedding matrix), in `*dim`.
///
/// # Safety
/// `model` is NULL or live; `dim` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn vtde_model_embedding_dim(
    model: *const VtdeModel,
    dim: *mut usize,
) -> VtdeStatus {
    guard(|| {
        if dim.is_null() {
            return Err(CError::invalid("dim (the output) is NULL"));
        }
        // SAFETY: the caller guarantees NULL or a live handle.
        let model = unsafe { non_null(model, "model") }?;
        // SAFETY: checked non-null; the caller guarantees it is valid for writes.
        unsafe { write(dim, model.model.manifest().projection_dim) };
        Ok(())
    })
}

/// Runs an embedding call: empties `*out`, checks the model, runs `embed`, stores its
/// matrix.
///
/// Private: `model` and `out` come straight from an entry point whose caller guarantees
/// that `model` is NULL or live and `out` NULL or valid for writes.
fn embed_into(
    model: *const VtdeModel,
    out: *mut VtdeMatrix,
    embed: impl FnOnce(&Model) -> Result<vtde_runtime::ndarray::Array2<f32>, CError>,
) -> VtdeStatus {
    guard(|| {
        if out.is_null() {
            return Err(CError::invalid("out (the result matrix) is NULL"));
        }
        // SAFETY: checked non-null; the caller guarantees it is valid for writes.
        unsafe { write(out, VtdeMatrix::EMPTY) };
        // SAFETY: the caller guarantees NULL or a live handle.
        let model = unsafe { non_null(model, "model") }?;
        let embeddings = embed(&model.model)?;
        // SAFETY: as above.
        unsafe { write(out, VtdeMatrix::from_array(embeddings)) };
        Ok(())
    })
}

/// Embeds `count` image files (JPEG, PNG, WebP, GIF, BMP, TIFF): `*out` becomes the
/// `[count, P]` L2-normalized embeddings, in order. Files are decoded on a pool of
/// threads as the `vtde` command line does; if any file fails, the call fails and the
/// message names the file.
///
/// # Safety
/// `paths` is NULL (only when `count` is 0) or `count` NUL-terminated strings; `model`
/// and `out` as [`vtde_embed_texts`].
#[no_mangle]
pub unsafe extern "C" fn vtde_embed_image_files(
    model: *const VtdeModel,
    paths: *const *const c_char,
    count: usize,
    out: *mut VtdeMatrix,
) -> VtdeStatus {
    embed_into(model, out, |model| {
        // SAFETY: the caller guarantees `count` strings.
        let pointers = unsafe { slice(paths, count, "paths") }?;
        let files = pointers
            .iter()
            .enumerate()
            // SAFETY: each pointer is NULL or a NUL-terminated string.
            .map(|(i, &p)| unsafe { path(p, &format!("paths[{i}]")) })
            .collect::<Result<Vec<_>, _>>()?;
        let result = model.embed_image_files(&files)?;
        if let Some(Err(e)) = result.outcomes.into_iter().find(|o| o.is_err()) {
            return Err(e.into());
        }
        Ok(result.embeddings)
    })
}

/// Embeds `count` encoded images held in memory (`data[i]`, `sizes[i]` bytes each; the
/// formats of [`vtde_embed_image_files`]): `*out` becomes `[count, P]`.
///
/// # Safety
/// `data` and `sizes` are NULL (only when `count` is 0) or `count` items; each `data[i]`
/// points to `sizes[i]` readable bytes; `model` and `out` as [`vtde_embed_texts`].
#[no_mangle]
pub unsafe extern "C" fn vtde_embed_encoded_images(
    model: *const VtdeModel,
    data: *const *const u8,
    sizes: *const usize,
    count: usize,
    out: *mut VtdeMatrix,
) -> VtdeStatus {
    embed_into(model, out, |model| {
        // SAFETY: the caller guarantees `count` items in each array.
        let (data, sizes) = unsafe { (slice(data, count, "data")?, slice(sizes, count, "sizes")?) };
        let options = model.image_options();
        let images = data
            .iter()
            .zip(sizes)
            .enumerate()
            .map(|(i, (&bytes, &size))| {
                if size == 0 {
                    return Err(CError::invalid(format!("image {i}: the buffer is empty")));
                }
                // SAFETY: the caller guarantees `size` readable bytes at `bytes`.
                let bytes = unsafe { slice(bytes, size, &format!("data[{i}]")) }?;
                decode_image(bytes, options).map_err(|e| {
                    let mut e = CError::from(e);
                    e.message = format!("image {i}: {}", e.message);
                    e
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(model.embed_images(&images)?)
    })
}

/// Embeds `count` RGB8 images in the caller's memory (see [`VtdeRgbImage`]): `*out`
/// becomes `[count, P]`. Pixels are taken as they are (no colour management), as
/// transformers' processors take an RGB PIL image.
///
/// # Safety
/// `images` is NULL (only when `count` is 0) or `count` items, each describing
/// `stride * (height - 1) + 3 * width` readable bytes; `model` and `out` as
/// [`vtde_embed_texts`].
#[no_mangle]
pub unsafe extern "C" fn vtde_embed_rgb8_images(
    model: *const VtdeModel,
    images: *const VtdeRgbImage,
    count: usize,
    out: *mut VtdeMatrix,
) -> VtdeStatus {
    embed_into(model, out, |model| {
        // SAFETY: the caller guarantees `count` items.
        let described = unsafe { slice(images, count, "images") }?;
        let max_pixels = model.image_options().max_pixels;
        let images = described
            .iter()
            .enumerate()
            .map(|(i, image)| {
                // SAFETY: the caller guarantees each image's bytes are readable.
                unsafe { copy_rgb8(image, max_pixels) }
                    .map_err(|e| CError::invalid(format!("image {i}: {}", e.message)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(model.embed_images(&images)?)
    })
}

/// Checks an RGB8 description and copies its rows into a packed image.
///
/// # Safety
/// `image.pixels` is NULL or points to the bytes the description says.
unsafe fn copy_rgb8(image: &VtdeRgbImage, max_pixels: u64) -> Result<DynamicImage, CError> {
    let (width, height) = (image.width as usize, image.height as usize);
    if width == 0 || height == 0 {
        return Err(CError::invalid(format!(
            "the image is {width}x{height}: both sides must be at least 1"
        )));
    }
    if u64::from(image.width) * u64::from(image.height) > max_pixels {
        return Err(CError::invalid(format!(
            "the image is {width}x{height}, more than the limit of {max_pixels} pixels"
        )));
    }
    let row = width
        .checked_mul(3)
        .ok_or_else(|| CError::invalid("the row size overflows"))?;
    if image.stride < row {
        return Err(CError::invalid(format!(
            "the stride is {} bytes, less than a row of {width} RGB pixels ({row} bytes)",
            image.stride
        )));
    }
    let total = image
        .stride
        .checked_mul(height - 1)
        .and_then(|n| n.checked_add(row))
        .ok_or_else(|| CError::invalid("the image size overflows"))?;
    // SAFETY: the caller guarantees `total` readable bytes at a non-null `pixels`.
    let bytes = unsafe { slice(image.pixels, total, "pixels") }?;
    let mut packed = Vec::with_capacity(row * height);
    for y in 0..height {
        let start = y * image.stride;
        packed.extend_from_slice(&bytes[start..start + row]);
    }
    RgbImage::from_raw(image.width, image.height, packed)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| CError::invalid("the pixel buffer does not match the size"))
}

/// Embeds `count` UTF-8 texts as they are (no prompt template): `*out` becomes the
/// `[count, P]` L2-normalized embeddings.
///
/// # Safety
/// `model` is NULL or live; `texts` is NULL (only when `count` is 0) or `count`
/// NUL-terminated strings; `out` is NULL or valid for writes (its old contents are
/// overwritten, not freed).
#[no_mangle]
pub unsafe extern "C" fn vtde_embed_texts(
    model: *const VtdeModel,
    texts: *const *const c_char,
    count: usize,
    out: *mut VtdeMatrix,
) -> VtdeStatus {
    embed_into(model, out, |model| {
        // SAFETY: the caller guarantees `count` strings.
        let texts = unsafe { utf8_array(texts, count, "texts") }?;
        Ok(model.embed_texts(&texts)?)
    })
}

/// Embeds `n_labels` labels for zero-shot classification: each label's embedding is the
/// mean of its prompt templates' normalized text embeddings (`"a photo of a {}"`; `{}`
/// is replaced by the label), as the `vtde score` command and CLIP's zero-shot evaluation
/// do. No templates (`n_templates` 0, `templates` may be NULL): the labels as they are. `*out`
/// becomes `[n_labels, P]`.
///
/// # Safety
/// `labels` is NULL (only when `n_labels` is 0) or `n_labels` NUL-terminated strings;
/// `templates` likewise with `n_templates`; `model` and `out` as [`vtde_embed_texts`].
#[no_mangle]
pub unsafe extern "C" fn vtde_embed_labels(
    model: *const VtdeModel,
    labels: *const *const c_char,
    n_labels: usize,
    templates: *const *const c_char,
    n_templates: usize,
    out: *mut VtdeMatrix,
) -> VtdeStatus {
    embed_into(model, out, |model| {
        // SAFETY: the caller guarantees `n_labels` and `n_templates` strings.
        let labels = unsafe { utf8_array(labels, n_labels, "labels") }?;
        // SAFETY: as above.
        let templates = unsafe { utf8_array(templates, n_templates, "templates") }?;
        Ok(model.embed_labels(&labels, &templates)?)
    })
}

/// `count` NUL-terminated UTF-8 strings, each checked, errors naming `what[i]`.
///
/// # Safety
/// `strings` is NULL (only when `count` is 0) or `count` pointers, each NULL or a
/// NUL-terminated string outliving the call.
unsafe fn utf8_array<'a>(
    strings: *const *const c_char,
    count: usize,
    what: &str,
) -> Result<Vec<&'a str>, CError> {
    // SAFETY: the caller guarantees `count` pointers.
    let pointers = unsafe { slice(strings, count, what) }?;
    pointers
        .iter()
        .enumerate()
        // SAFETY: each pointer is NULL or a NUL-terminated string.
        .map(|(i, &p)| unsafe { utf8(p, &format!("{what}[{i}]")) })
        .collect()
}

/// Scores `n_images` image embeddings against `n_texts` text embeddings, both row-major
/// with `dim` columns and L2-normalized (as the `vtde_embed_*` functions return them),
/// into `*out`: logits and per-image probabilities `[n_images, n_texts]`, and the loss
/// when `n_images == n_texts`. A zero or non-finite embedding is an error, never a NaN.
///
/// # Safety
/// `image_embeds` holds `n_images * dim` floats and `text_embeds` `n_texts * dim` (either
/// may be NULL when empty); `model` is NULL or live; `out` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn vtde_score(
    model: *const VtdeModel,
    image_embeds: *const f32,
    n_images: usize,
    text_embeds: *const f32,
    n_texts: usize,
    dim: usize,
    out: *mut VtdeScores,
) -> VtdeStatus {
    guard(|| {
        if out.is_null() {
            return Err(CError::invalid("out (the scores) is NULL"));
        }
        // SAFETY: checked non-null; the caller guarantees it is valid for writes.
        unsafe { write(out, VtdeScores::EMPTY) };
        // SAFETY: the caller guarantees NULL or a live handle.
        let model = unsafe { non_null(model, "model") }?;
        if dim == 0 {
            return Err(CError::invalid("dim is 0"));
        }
        let matrix = |ptr: *const f32, rows: usize, what: &str| {
            let len = rows
                .checked_mul(dim)
                .ok_or_else(|| CError::invalid(format!("{what}: {rows} x {dim} overflows")))?;
            // SAFETY: the caller guarantees `rows * dim` floats.
            let values = unsafe { slice(ptr, len, what) }?;
            ArrayView2::from_shape((rows, dim), values)
                .map_err(|e| CError::invalid(format!("{what}: {e}")))
        };
        let images = matrix(image_embeds, n_images, "image_embeds")?;
        let texts = matrix(text_embeds, n_texts, "text_embeds")?;
        let scores = model.model.score(images, texts)?;
        let result = VtdeScores {
            logits_per_image: VtdeMatrix::from_array(scores.logits_per_image),
            probs_per_image: VtdeMatrix::from_array(scores.probs_per_image),
            has_loss: scores.loss.is_some(),
            loss: scores.loss.unwrap_or(0.0),
        };
        // SAFETY: as above.
        unsafe { write(out, result) };
        Ok(())
    })
}

/// Frees a matrix's floats and empties it (NULL data, 0 × 0). NULL and empty matrices
/// are ignored, so freeing twice is harmless.
///
/// # Safety
/// `matrix` is NULL, or a matrix a vtde call filled (or emptied), fields unchanged.
#[no_mangle]
pub unsafe extern "C" fn vtde_matrix_free(matrix: *mut VtdeMatrix) {
    // SAFETY: the caller guarantees NULL or a vtde-filled matrix.
    if let Some(matrix) = unsafe { matrix.as_mut() } {
        // SAFETY: its data came from `VtdeMatrix::from_array` with these fields.
        unsafe { matrix.release() };
    }
}

/// Frees both matrices of a [`VtdeScores`] and empties it. NULL is ignored.
///
/// # Safety
/// `scores` is NULL, or scores [`vtde_score`] filled (or emptied), fields unchanged.
#[no_mangle]
pub unsafe extern "C" fn vtde_scores_free(scores: *mut VtdeScores) {
    // SAFETY: the caller guarantees NULL or vtde-filled scores.
    if let Some(scores) = unsafe { scores.as_mut() } {
        // SAFETY: both matrices came from `VtdeMatrix::from_array`.
        unsafe {
            scores.logits_per_image.release();
            scores.probs_per_image.release();
        }
        *scores = VtdeScores::EMPTY;
    }
}
