//! Execution providers by name (`cpu`, `cuda`, `cuda:1`, `tensorrt`, `coreml`), for the
//! language bindings (C, Python) that take a provider list as strings.

use crate::session::ExecutionProvider;

impl ExecutionProvider {
    /// Parses a provider name, case-insensitively: `cpu`, `cuda`, `tensorrt`, `coreml`,
    /// with `:N` after `cuda` or `tensorrt` for CUDA device N (default 0). `None` for any
    /// other name.
    ///
    /// ```
    /// use vtde_runtime::ExecutionProvider;
    ///
    /// assert_eq!(ExecutionProvider::from_name("CUDA:1"), Some(ExecutionProvider::cuda(1)));
    /// assert_eq!(ExecutionProvider::from_name(" cpu "), Some(ExecutionProvider::Cpu));
    /// assert_eq!(ExecutionProvider::from_name("TensorRT"), Some(ExecutionProvider::tensorrt(0)));
    /// for bad in ["gpu", "cuda:-1", "cuda:x", "cpu:0", "coreml:1", ""] {
    ///     assert_eq!(ExecutionProvider::from_name(bad), None, "{bad}");
    /// }
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        let (kind, device) = match name.split_once(':') {
            Some((kind, device)) => (kind, Some(device.parse::<i32>().ok()?)),
            None => (name.as_str(), None),
        };
        match (kind, device) {
            ("cpu", None) => Some(ExecutionProvider::Cpu),
            ("coreml", None) => Some(ExecutionProvider::coreml()),
            ("cuda", d) if d.unwrap_or(0) >= 0 => Some(ExecutionProvider::cuda(d.unwrap_or(0))),
            ("tensorrt", d) if d.unwrap_or(0) >= 0 => {
                Some(ExecutionProvider::tensorrt(d.unwrap_or(0)))
            }
            _ => None,
        }
    }
}
