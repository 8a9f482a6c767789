//! vtde-runtime: loads a vtde model package and runs it with ONNX Runtime.
pub mod manifest;
