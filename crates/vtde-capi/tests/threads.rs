//! One `VtdeModel` used by two threads at once gives the same bytes as one thread.

#![allow(clippy::unwrap_used)]

mod support;

use std::ffi::CString;

use support::{demo_package, example_images, LABELS};
use vtde::{
    vtde_embed_image_files, vtde_embed_texts, vtde_matrix_free, vtde_model_embedding_dim,
    vtde_model_free, vtde_model_open, VtdeMatrix, VtdeModel, VtdeStatus,
};

/// The model's address, shared with threads (the C API says handles are thread-safe).
#[derive(Clone, Copy)]
struct Handle(usize);

/// Embeds every example image and the labels through the C API; returns their bytes.
fn embed_all(handle: Handle, paths: &[CString], labels: &[CString]) -> Vec<u8> {
    let model = handle.0 as *const VtdeModel;
    let path_ptrs: Vec<_> = paths.iter().map(|p| p.as_ptr()).collect();
    let label_ptrs: Vec<_> = labels.iter().map(|p| p.as_ptr()).collect();
    let mut bytes = Vec::new();
    for run in 0..2 {
        let mut out = VtdeMatrix {
            data: std::ptr::null_mut(),
            rows: 0,
            cols: 0,
        };
        // SAFETY: a live model, valid string arrays of the given lengths, a valid output.
        let status = unsafe {
            if run == 0 {
                vtde_embed_image_files(model, path_ptrs.as_ptr(), path_ptrs.len(), &mut out)
            } else {
                vtde_embed_texts(model, label_ptrs.as_ptr(), label_ptrs.len(), &mut out)
            }
        };
        assert_eq!(status, VtdeStatus::Ok);
        // SAFETY: a successful call filled `rows * cols` floats.
        let values = unsafe { std::slice::from_raw_parts(out.data, out.rows * out.cols) };
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        // SAFETY: filled by vtde, unchanged.
        unsafe { vtde_matrix_free(&mut out) };
    }
    bytes
}

#[test]
fn two_threads_through_one_handle_give_one_threads_bytes() {
    let package = CString::new(demo_package().to_str().unwrap()).unwrap();
    let paths: Vec<CString> = example_images()
        .iter()
        .map(|p| CString::new(p.to_str().unwrap()).unwrap())
        .collect();
    let labels: Vec<CString> = LABELS.iter().map(|l| CString::new(*l).unwrap()).collect();
    let mut model: *mut VtdeModel = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path, default options, a valid output slot.
    let status = unsafe { vtde_model_open(package.as_ptr(), std::ptr::null(), &mut model) };
    assert_eq!(status, VtdeStatus::Ok);
    let handle = Handle(model as usize);

    let alone = embed_all(handle, &paths, &labels);
    let mut dim = 0;
    // SAFETY: a live model and a valid output.
    let status = unsafe { vtde_model_embedding_dim(model, &mut dim) };
    assert_eq!(status, VtdeStatus::Ok);
    assert!(dim > 0);
    assert_eq!(alone.len(), (paths.len() + labels.len()) * dim * 4);
    let together: Vec<Vec<u8>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    (0..3)
                        .map(|_| embed_all(handle, &paths, &labels))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(together.len(), 6);
    for bytes in &together {
        assert!(bytes == &alone, "a concurrent run gave other bytes");
    }
    // SAFETY: from vtde_model_open; no thread uses it any more.
    unsafe { vtde_model_free(model) };
}
