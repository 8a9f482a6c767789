//! The error model of the C API: every entry point returns a [`VtdeStatus`] and, when it
//! is not [`VtdeStatus::Ok`], leaves a message in a thread-local slot that
//! `vtde_last_error_message` returns. [`guard`] is the one wrapper every entry point goes
//! through: it clears the slot, runs the body under `catch_unwind` (a panic must never
//! unwind into C, which is undefined behaviour) and turns the outcome into a status.

use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a vtde call returned: `VTDE_STATUS_OK` (0) or the kind of error. The message
/// (`vtde_last_error_message`) says what exactly went wrong.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VtdeStatus {
    /// Success.
    Ok = 0,
    /// A null pointer, a bad size or stride, text that is not UTF-8, an unknown option
    /// value: the caller's arguments are wrong.
    InvalidArgument = 1,
    /// The package could not be opened: missing or unreadable files, a bad manifest, a
    /// checksum mismatch, a precision the package lacks.
    Package = 2,
    /// The ONNX Runtime library was not found or could not be loaded, or an execution
    /// provider could not start.
    OnnxRuntime = 3,
    /// An image could not be read, decoded or preprocessed (the message names which).
    Image = 4,
    /// Inference, tokenization or scoring failed.
    Runtime = 5,
    /// A bug in vtde (a Rust panic, caught at the boundary). The handle stays usable.
    Internal = 6,
}

/// An error on its way to the caller: its status and message.
#[derive(Debug)]
pub(crate) struct CError {
    pub(crate) status: VtdeStatus,
    pub(crate) message: String,
}

impl CError {
    /// An [`VtdeStatus::InvalidArgument`] error.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CError {
            status: VtdeStatus::InvalidArgument,
            message: message.into(),
        }
    }
}

impl From<vtde_runtime::Error> for CError {
    fn from(e: vtde_runtime::Error) -> Self {
        use vtde_runtime::Error as E;
        let status = match &e {
            E::Io { .. }
            | E::Package(_)
            | E::ChecksumMismatch { .. }
            | E::MissingVariant { .. }
            | E::GraphContract { .. }
            | E::PrecisionNotForProvider { .. } => VtdeStatus::Package,
            E::OnnxRuntimeNotFound { .. }
            | E::OnnxRuntimeInit { .. }
            | E::OnnxRuntimeAlreadyLoaded { .. }
            | E::ExecutionProviderUnavailable { .. }
            | E::ProviderFailed { .. }
            | E::HeavyOperatorsOnCpu { .. } => VtdeStatus::OnnxRuntime,
            E::ImageDecode { .. }
            | E::ImageTooLarge { .. }
            | E::DecoderPanicked { .. }
            | E::ImageUnavailable { .. }
            | E::ImagePreprocessFile { .. }
            | E::ImagePreprocess { .. } => VtdeStatus::Image,
            E::BadTemplate { .. } => VtdeStatus::InvalidArgument,
            _ => VtdeStatus::Runtime,
        };
        CError {
            status,
            message: e.to_string(),
        }
    }
}

thread_local! {
    /// The message of this thread's last failed call (empty after a successful one).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `message` as this thread's last error (interior NULs become spaces).
fn set_last_error(message: String) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = message);
}

/// A pointer to this thread's last error message, valid until the thread's next vtde call.
pub(crate) fn last_error_ptr() -> *const std::ffi::c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

/// Runs one entry point's body: clears the last error, catches panics, records the
/// message of a failure and returns its status.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), CError>) -> VtdeStatus {
    set_last_error(String::new());
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(CError {
            status: VtdeStatus::Internal,
            message: format!("internal error in vtde (please report it): {what}"),
        })
    });
    match outcome {
        Ok(()) => VtdeStatus::Ok,
        Err(e) => {
            set_last_error(e.message);
            e.status
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: the pointer is this thread's NUL-terminated message, not yet replaced.
        unsafe { std::ffi::CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let status = guard(|| panic!("the panic's words"));
        assert_eq!(status, VtdeStatus::Internal);
        assert!(
            last_error().contains("the panic's words"),
            "{}",
            last_error()
        );
        // The next successful call clears the message.
        assert_eq!(guard(|| Ok(())), VtdeStatus::Ok);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn messages_are_per_thread() {
        assert_eq!(
            guard(|| Err(CError::invalid("main thread"))),
            VtdeStatus::InvalidArgument
        );
        std::thread::spawn(|| {
            assert_eq!(last_error(), "");
            let _ = guard(|| Err(CError::invalid("other\0thread")));
            assert_eq!(last_error(), "other thread");
        })
        .join()
        .unwrap();
        assert_eq!(last_error(), "main thread");
    }
}
