//! Results handed to C ([`VtdeMatrix`], [`VtdeScores`]) and the checked readers of the
//! caller's pointers (C strings, arrays, paths). A result's floats are allocated here and
//! given back to vtde to free (`vtde_matrix_free`, `vtde_scores_free`): the caller's
//! `free` may belong to another allocator.

use std::ffi::{c_char, CStr};
use std::path::PathBuf;

use vtde_runtime::ndarray::Array2;

use crate::error::CError;

/// A row-major `rows × cols` matrix of floats that vtde allocated: `data[r * cols + c]`.
/// Free it with `vtde_matrix_free`, once; do not change its fields before. `data` is
/// NULL when the matrix is empty.
#[repr(C)]
#[derive(Debug)]
pub struct VtdeMatrix {
    /// `rows * cols` floats, or NULL when there are none.
    pub data: *mut f32,
    /// Number of rows (one per image or text).
    pub rows: usize,
    /// Number of columns (the embedding width, or the number of texts for scores).
    pub cols: usize,
}

impl VtdeMatrix {
    /// The empty matrix (what an output holds before a call and after it is freed).
    pub(crate) const EMPTY: VtdeMatrix = VtdeMatrix {
        data: std::ptr::null_mut(),
        rows: 0,
        cols: 0,
    };

    /// Moves an array's values into a new C-owned matrix.
    pub(crate) fn from_array(array: Array2<f32>) -> Self {
        let (rows, cols) = array.dim();
        if rows * cols == 0 {
            return VtdeMatrix {
                rows,
                cols,
                ..Self::EMPTY
            };
        }
        // Row-major order whatever the array's layout.
        let values: Box<[f32]> = array.iter().copied().collect();
        VtdeMatrix {
            data: Box::into_raw(values).cast::<f32>(),
            rows,
            cols,
        }
    }

    /// Frees the values and empties the matrix.
    ///
    /// # Safety
    /// `data` is NULL or came from [`VtdeMatrix::from_array`] with these `rows` and `cols`.
    pub(crate) unsafe fn release(&mut self) {
        if !self.data.is_null() {
            let len = self.rows * self.cols;
            // SAFETY: the caller guarantees `data` is the start of a boxed slice of `len`
            // floats made by `from_array`, not yet freed.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.data, len)) });
        }
        *self = Self::EMPTY;
    }
}

/// Scores of images against texts, as `vtde_score` returns them. Free with
/// `vtde_scores_free`.
#[repr(C)]
#[derive(Debug)]
pub struct VtdeScores {
    /// `[n_images, n_texts]`: `exp(logit_scale) * image · text`.
    pub logits_per_image: VtdeMatrix,
    /// `[n_images, n_texts]`: each image's softmax over the texts.
    pub probs_per_image: VtdeMatrix,
    /// Whether `loss` is set: only when there are as many texts as images (at least one).
    pub has_loss: bool,
    /// The contrastive loss (CLIP's), when `has_loss`.
    pub loss: f32,
}

impl VtdeScores {
    /// Nothing: what an output holds before a call and after it is freed.
    pub(crate) const EMPTY: VtdeScores = VtdeScores {
        logits_per_image: VtdeMatrix::EMPTY,
        probs_per_image: VtdeMatrix::EMPTY,
        has_loss: false,
        loss: 0.0,
    };
}

/// `*ptr` as a reference, or an error naming the argument when it is NULL.
///
/// # Safety
/// `ptr` is NULL or points to a valid `T` that outlives the call.
pub(crate) unsafe fn non_null<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, CError> {
    // SAFETY: the caller guarantees a non-null `ptr` is valid.
    unsafe { ptr.as_ref() }.ok_or_else(|| CError::invalid(format!("{what} is NULL")))
}

/// `ptr` as `count` items; NULL is accepted when `count` is 0.
///
/// # Safety
/// A non-null `ptr` points to `count` valid items that outlive the call.
pub(crate) unsafe fn slice<'a, T>(
    ptr: *const T,
    count: usize,
    what: &str,
) -> Result<&'a [T], CError> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(CError::invalid(format!(
            "{what} is NULL but the count is {count}"
        )));
    }
    // SAFETY: non-null, and the caller guarantees `count` valid items.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// A NUL-terminated string as UTF-8.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that outlives the call.
pub(crate) unsafe fn utf8<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, CError> {
    if ptr.is_null() {
        return Err(CError::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map_err(|e| CError::invalid(format!("{what} is not valid UTF-8: {e}")))
}

/// A NUL-terminated file path: any bytes on Unix, UTF-8 elsewhere.
///
/// # Safety
/// As [`utf8`].
pub(crate) unsafe fn path(ptr: *const c_char, what: &str) -> Result<PathBuf, CError> {
    if ptr.is_null() {
        return Err(CError::invalid(format!("{what} is NULL")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: non-null, and the caller guarantees a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        if bytes.is_empty() {
            return Err(CError::invalid(format!("{what} is empty")));
        }
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        // SAFETY: as above.
        let text = unsafe { utf8(ptr, what) }?;
        if text.is_empty() {
            return Err(CError::invalid(format!("{what} is empty")));
        }
        Ok(PathBuf::from(text))
    }
}

/// Writes `value` to the caller's output slot.
///
/// # Safety
/// `out` is non-null and valid for writes (checked by the caller with [`non_null`] rules).
pub(crate) unsafe fn write<T>(out: *mut T, value: T) {
    // SAFETY: the caller guarantees `out` is valid for writes; the old value is plain
    // data (or already released), so it is overwritten without dropping.
    unsafe { out.write(value) }
}
