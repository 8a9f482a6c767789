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

/// An ONNX Runtime execution provider, asked for in
/// [`RuntimeOptions::execution_providers`](crate::RuntimeOptions::execution_providers), in
/// order of preference.
///
/// Every variant exists in every build, so that programs can name them without `cfg`;
/// one whose cargo feature (`cuda`, `tensorrt`, `coreml`) is not enabled makes
/// [`Model::open`](crate::Model::open) fail with
/// [`Error::ExecutionProviderUnavailable`](crate::Error::ExecutionProviderUnavailable). A
/// provider that is compiled in but cannot
/// start (no GPU or driver, an ONNX Runtime library built without it) is an error too,
/// [`Error::ProviderFailed`](crate::Error::ProviderFailed), unless the CPU is acceptable:
/// listed among the providers, or
/// [`RuntimeOptions::fallback_to_cpu`](crate::RuntimeOptions::fallback_to_cpu) set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// NVIDIA CUDA (feature `cuda`).
    Cuda {
        /// The CUDA device, 0 for the first GPU.
        device_id: i32,
    },
    /// NVIDIA TensorRT (feature `tensorrt`), with CUDA for what TensorRT does not take.
    TensorRt(TensorRtOptions),
    /// Apple CoreML (feature `coreml`; macOS and iOS only).
    CoreMl(CoreMlOptions),
}

impl ExecutionProvider {
    /// CUDA on device `device_id`.
    pub fn cuda(device_id: i32) -> Self {
        ExecutionProvider::Cuda { device_id }
    }

    /// TensorRT with its defaults (fp16, engine and timing caches) on device `device_id`.
    pub fn tensorrt(device_id: i32) -> Self {
        ExecutionProvider::TensorRt(TensorRtOptions::default().with_device_id(device_id))
    }

    /// CoreML with its defaults.
    pub fn coreml() -> Self {
        ExecutionProvider::CoreMl(CoreMlOptions::default())
    }

    /// The provider's short name: `CPU`, `CUDA`, `TensorRT`, `CoreML`.
    pub fn name(&self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "CPU",
            ExecutionProvider::Cuda { .. } => "CUDA",
            ExecutionProvider::TensorRt(_) => "TensorRT",
            ExecutionProvider::CoreMl(_) => "CoreML",
        }
    }

    /// ONNX Runtime's name for it, as its logs and `GetAvailableProviders` say it.
    pub fn onnxruntime_name(&self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => CPU_PROVIDER,
            ExecutionProvider::Cuda { .. } => "CUDAExecutionProvider",
            ExecutionProvider::TensorRt(_) => "TensorrtExecutionProvider",
            ExecutionProvider::CoreMl(_) => "CoreMLExecutionProvider",
        }
    }

    /// Whether it is the CPU provider.
    pub fn is_cpu(&self) -> bool {
        matches!(self, ExecutionProvider::Cpu)
    }

    /// Whether the package's int8 variant can run on it: int8 graphs use ONNX Runtime's
    /// CPU integer kernels (`MatMulInteger`, `DynamicQuantizeLinear`), which TensorRT and
    /// CoreML do not take.
    pub fn runs_int8(&self) -> bool {
        !matches!(
            self,
            ExecutionProvider::TensorRt(_) | ExecutionProvider::CoreMl(_)
        )
    }
}

impl std::fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// ONNX Runtime's name of its CPU provider.
pub(crate) const CPU_PROVIDER: &str = "CPUExecutionProvider";

/// TensorRT's settings. Engines take minutes to build, so they are cached on disk by
/// default (see [`TensorRtOptions::cache_dir`]); shape profiles cover batch 1 to
/// [`TensorRtOptions::max_batch`] and every text length up to the tower's maximum.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TensorRtOptions {
    /// The CUDA device, 0 for the first GPU.
    pub device_id: i32,
    /// Let TensorRT run layers in fp16 (default true; the package's fp16 graphs keep
    /// layer norm and softmax in fp32 either way).
    pub fp16: bool,
    /// TensorRT's workspace limit in MiB (default: TensorRT's own, the device's memory;
    /// set e.g. 2048 on 8 GB Jetsons).
    pub workspace_mib: Option<usize>,
    /// Largest batch the engines' shape profiles accept (default 32; never less than the
    /// run's batch size,
    /// [`RuntimeOptions::batch_size`](crate::RuntimeOptions::batch_size), which is the
    /// profiles' optimum).
    pub max_batch: usize,
    /// Engine and timing caches (default on).
    pub cache: bool,
    /// Where engines and timing caches go (default: `tensorrt/` in the vtde cache
    /// directory: `$VTDE_CACHE_DIR`, else `$XDG_CACHE_HOME/vtde`, else `~/.cache/vtde`).
    /// Inside it, each graph's engines have a folder keyed by the package's manifest
    /// (and so every graph's sha256), the graph, its precision, the shape profile and the
    /// ONNX Runtime version; ONNX Runtime names the engine files by the GPU's compute
    /// capability. A changed package, precision, profile, ONNX Runtime (and so TensorRT)
    /// version or GPU model therefore gets new engines.
    pub cache_dir: Option<std::path::PathBuf>,
}

impl Default for TensorRtOptions {
    fn default() -> Self {
        TensorRtOptions {
            device_id: 0,
            fp16: true,
            workspace_mib: None,
            max_batch: 32,
            cache: true,
            cache_dir: None,
        }
    }
}

impl TensorRtOptions {
    /// Sets [`TensorRtOptions::device_id`].
    pub fn with_device_id(mut self, device_id: i32) -> Self {
        self.device_id = device_id;
        self
    }

    /// Sets [`TensorRtOptions::fp16`].
    pub fn with_fp16(mut self, fp16: bool) -> Self {
        self.fp16 = fp16;
        self
    }

    /// Sets [`TensorRtOptions::workspace_mib`].
    pub fn with_workspace_mib(mut self, mib: usize) -> Self {
        self.workspace_mib = Some(mib);
        self
    }

    /// Sets [`TensorRtOptions::max_batch`] (at least 1).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets [`TensorRtOptions::cache`].
    pub fn with_cache(mut self, cache: bool) -> Self {
        self.cache = cache;
        self
    }

    /// Sets [`TensorRtOptions::cache_dir`].
    pub fn with_cache_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
}

/// Which of an Apple device's compute units CoreML may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoreMlComputeUnits {
    /// CPU, GPU and Neural Engine (CoreML's default).
    #[default]
    All,
    /// CPU and GPU.
    CpuAndGpu,
    /// CPU and Neural Engine.
    CpuAndNeuralEngine,
    /// CPU only.
    CpuOnly,
}

/// CoreML's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoreMlOptions {
    /// The compute units CoreML may use (default all).
    pub compute_units: CoreMlComputeUnits,
    /// Convert to the ML Program format (default true; macOS 12+): fp16 on the GPU and
    /// Neural Engine, and more operators than the older NeuralNetwork format.
    pub ml_program: bool,
}

impl Default for CoreMlOptions {
    fn default() -> Self {
        CoreMlOptions {
            compute_units: CoreMlComputeUnits::All,
            ml_program: true,
        }
    }
}

impl CoreMlOptions {
    /// Sets [`CoreMlOptions::compute_units`].
    pub fn with_compute_units(mut self, units: CoreMlComputeUnits) -> Self {
        self.compute_units = units;
        self
    }

    /// Sets [`CoreMlOptions::ml_program`].
    pub fn with_ml_program(mut self, on: bool) -> Self {
        self.ml_program = on;
        self
    }
}

/// What a graph's session needs to register a provider: its shape profile (TensorRT)
/// and the folder of its engine cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GraphTarget {
    /// Per input: `name:d0xd1x...` at batch 1 and the shortest text, at the optimum and at
    /// the maximum, in TensorRT's profile syntax.
    pub profile: Option<[String; 3]>,
    /// Where this graph's TensorRT engines go (None: no engine cache).
    pub engine_cache: Option<std::path::PathBuf>,
    /// TensorRT's timing cache folder (shared by every graph).
    pub timing_cache: Option<std::path::PathBuf>,
}

impl ExecutionProvider {
    /// `ort`'s registration of the provider for one graph (failing when it cannot
    /// start), or the error for one this build lacks.
    pub(crate) fn dispatch(
        &self,
        #[allow(unused_variables)] target: &GraphTarget,
    ) -> Result<ort::ep::ExecutionProviderDispatch> {
        match self {
            ExecutionProvider::Cpu => Ok(ort::ep::CPU::default().build().error_on_failure()),
            #[cfg(feature = "cuda")]
            ExecutionProvider::Cuda { device_id } => Ok(ort::ep::CUDA::default()
                .with_device_id(*device_id)
                .build()
                .error_on_failure()),
            #[cfg(not(feature = "cuda"))]
            ExecutionProvider::Cuda { .. } => Err(unavailable("CUDA", "cuda")),
            #[cfg(feature = "tensorrt")]
            ExecutionProvider::TensorRt(o) => {
                let mut trt = ort::ep::TensorRT::default()
                    .with_device_id(o.device_id)
                    .with_fp16(o.fp16)
                    // Layer norm in fp32 even where TensorRT would fuse it in fp16
                    // (fp16 layer-norm overflow: NVIDIA/TensorRT issues 2564, 3101).
                    .with_layer_norm_fp32_fallback(true);
                if let Some(mib) = o.workspace_mib {
                    trt = trt.with_max_workspace_size(mib.saturating_mul(1 << 20));
                }
                if let Some([min, opt, max]) = &target.profile {
                    trt = trt
                        .with_profile_min_shapes(min)
                        .with_profile_opt_shapes(opt)
                        .with_profile_max_shapes(max);
                }
                if let Some(dir) = &target.engine_cache {
                    trt = trt
                        .with_engine_cache(true)
                        .with_engine_cache_path(dir.display());
                }
                if let Some(dir) = &target.timing_cache {
                    trt = trt
                        .with_timing_cache(true)
                        .with_timing_cache_path(dir.display());
                }
                Ok(trt.build().error_on_failure())
            }
            #[cfg(not(feature = "tensorrt"))]
            ExecutionProvider::TensorRt(_) => Err(unavailable("TensorRT", "tensorrt")),
            #[cfg(feature = "coreml")]
            ExecutionProvider::CoreMl(o) => {
                use ort::ep::coreml::{ComputeUnits, ModelFormat};
                let units = match o.compute_units {
                    CoreMlComputeUnits::All => ComputeUnits::All,
                    CoreMlComputeUnits::CpuAndGpu => ComputeUnits::CPUAndGPU,
                    CoreMlComputeUnits::CpuAndNeuralEngine => ComputeUnits::CPUAndNeuralEngine,
                    CoreMlComputeUnits::CpuOnly => ComputeUnits::CPUOnly,
                };
                let format = if o.ml_program {
                    ModelFormat::MLProgram
                } else {
                    ModelFormat::NeuralNetwork
                };
                Ok(ort::ep::CoreML::default()
                    .with_compute_units(units)
                    .with_model_format(format)
                    .build()
                    .error_on_failure())
            }
            #[cfg(not(feature = "coreml"))]
            ExecutionProvider::CoreMl(_) => Err(unavailable("CoreML", "coreml")),
        }
    }
}

#[cfg(not(all(feature = "cuda", feature = "tensorrt", feature = "coreml")))]
fn unavailable(provider: &'static str, feature: &'static str) -> crate::error::Error {
    crate::error::Error::ExecutionProviderUnavailable { provider, feature }
}
