//! Writing ONNX: the protobuf messages ([`proto`]) and a small graph builder
//! ([`builder`]) that the tower modules use to emit standard-opset graphs.

pub mod builder;
pub mod proto;

pub use builder::{Dim, GraphBuilder, Value};

/// The default-domain opset every vtde graph imports. Opset 17 has
/// `LayerNormalization` and is taken by TensorRT and CoreML.
pub const OPSET: i64 = 17;

/// The ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;
