//! The execution providers and graph optimization levels a caller can ask for, and
//! their translation to `ort`'s types (which stay inside the crate).

use ort::session::builder::GraphOptimizationLevel;

use crate::error::Result;

/// ONNX Runtime's graph optimization levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptimizationLevel {
    /// No graph optimization.
    Disable,
    /// Semantics-preserving rewrites (constant folding, redundant nodes).
    Basic,
    /// Basic plus complex fusions (attention, GELU, layer norm).
    Extended,
    /// Everything, including layout optimizations (the default).
    #[default]
    All,
}

impl OptimizationLevel {
    /// `ort`'s name for the level.
    pub(crate) fn to_ort(self) -> GraphOptimizationLevel {
        match self {
            OptimizationLevel::Disable => GraphOptimizationLevel::Disable,
            OptimizationLevel::Basic => GraphOptimizationLevel::Level1,
            OptimizationLevel::Extended => GraphOptimizationLevel::Level2,
            OptimizationLevel::All => GraphOptimizationLevel::All,
        }
    }
}

/// An ONNX Runtime execution provider to try, in the order given, before the CPU.
///
/// Every variant exists in every build, so that programs can name them without `cfg`;
/// one whose cargo feature (`cuda`, `tensorrt`, `coreml`) is not enabled makes
/// [`Model::open`](crate::Model::open) fail with
/// [`Error::ExecutionProviderUnavailable`]. A provider that is compiled in but cannot
/// start (no GPU, a libonnxruntime built without it) falls back to the next one and
/// finally the CPU, unless
/// [`RuntimeOptions::fallback_to_cpu`](crate::RuntimeOptions::fallback_to_cpu) is false.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider (always available; the final fallback anyway).
    Cpu,
    /// NVIDIA CUDA (feature `cuda`).
    Cuda {
        /// The CUDA device, 0 for the first GPU.
        device_id: i32,
    },
    /// NVIDIA TensorRT (feature `tensorrt`); `fp16` lets TensorRT run layers in fp16.
    TensorRt {
        /// The CUDA device, 0 for the first GPU.
        device_id: i32,
        /// Let TensorRT run layers in fp16.
        fp16: bool,
    },
    /// Apple CoreML (feature `coreml`).
    CoreMl,
}

impl ExecutionProvider {
    /// `ort`'s registration of the provider, or the error for one this build lacks.
    pub(crate) fn dispatch(&self) -> Result<ort::ep::ExecutionProviderDispatch> {
        match self {
            ExecutionProvider::Cpu => Ok(ort::ep::CPU::default().build()),
            #[cfg(feature = "cuda")]
            ExecutionProvider::Cuda { device_id } => {
                Ok(ort::ep::CUDA::default().with_device_id(*device_id).build())
            }
            #[cfg(not(feature = "cuda"))]
            ExecutionProvider::Cuda { .. } => {
                Err(crate::error::Error::ExecutionProviderUnavailable {
                    provider: "CUDA",
                    feature: "cuda",
                })
            }
            #[cfg(feature = "tensorrt")]
            ExecutionProvider::TensorRt { device_id, fp16 } => Ok(ort::ep::TensorRT::default()
                .with_device_id(*device_id)
                .with_fp16(*fp16)
                .build()),
            #[cfg(not(feature = "tensorrt"))]
            ExecutionProvider::TensorRt { .. } => {
                Err(crate::error::Error::ExecutionProviderUnavailable {
                    provider: "TensorRT",
                    feature: "tensorrt",
                })
            }
            #[cfg(feature = "coreml")]
            ExecutionProvider::CoreMl => Ok(ort::ep::CoreML::default().build()),
            #[cfg(not(feature = "coreml"))]
            ExecutionProvider::CoreMl => Err(crate::error::Error::ExecutionProviderUnavailable {
                provider: "CoreML",
                feature: "coreml",
            }),
        }
    }
}
