//! [`RuntimeOptions`]: how a model is opened and run (ONNX Runtime library, threads,
//! providers, precision, batching, image reading).

use std::path::PathBuf;

use vtde_package::Precision;

use crate::onnxruntime::SharedThreadPool;
use crate::package::PackageOptions;
use crate::preprocess::image::ImageOptions;
use crate::session::{ExecutionProvider, OptimizationLevel, SessionConfig};

/// Most intra-op threads per session: larger values are clamped to it (see
/// [`RuntimeOptions::intra_op_threads`]).
pub(crate) const MAX_INTRA_OP_THREADS: usize = 256;

/// Most inter-op threads per session: larger values are clamped to it (see
/// [`RuntimeOptions::inter_op_threads`]).
pub(crate) const MAX_INTER_OP_THREADS: usize = 64;

/// How a [`Model`](crate::Model) is opened and run. Every field has a `with_*` builder.
///
/// ```
/// use vtde_runtime::{Precision, RuntimeOptions};
///
/// let options = RuntimeOptions::default()
///     .with_threads(2)
///     .with_batch_size(16)
///     .with_precision(Precision::Int8);
/// assert_eq!(options.intra_op_threads, Some(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeOptions {
    /// The ONNX Runtime library file (or a folder holding it), version 1.31.x. `None`:
    /// the file `ORT_DYLIB_PATH` names, if set; else the first found of: beside the
    /// executable (and in its parent folder), `$VTDE_CACHE_DIR/onnxruntime/1.31.1/`, and
    /// `.cache/onnxruntime/1.31.1/` in the current folder or a folder above it, or in the
    /// vtde checkout this crate was built from (where `tools/fetch-onnxruntime.sh` puts
    /// it). A path given here or in
    /// `ORT_DYLIB_PATH` that does not load is an error, never silently replaced.
    pub onnxruntime_library: Option<PathBuf>,
    /// Threads inside one operator (ONNX Runtime's default: one per physical core): the
    /// size of the shared pool ([`RuntimeOptions::shared_thread_pool`]), or of each
    /// session's own pool. At most 256 are used: a larger value is clamped. ONNX Runtime
    /// starts that many threads whatever the number of cores (per session, without the
    /// shared pool), and thousands of them make opening and closing a model take minutes
    /// (`4096` never finished closing on a 2-core machine).
    pub intra_op_threads: Option<usize>,
    /// Threads running independent operators at once; more than 1 turns on parallel
    /// execution. At most 64 are used: a larger value is clamped. These graphs have little
    /// operator-level parallelism, and each such thread costs time on every run
    /// (measured on 2 cores: a one-image run took 0.1 s with 2, 1.6 s with 32, 5.7 s
    /// with 64, and never finished with 4096).
    pub inter_op_threads: Option<usize>,
    /// Most sessions per graph, created only when that many threads run the graph at
    /// once. `None`: 2. Each session holds its own copy of the graph's weights.
    pub max_sessions_per_graph: Option<usize>,
    /// ONNX Runtime's graph optimization level.
    pub optimization_level: OptimizationLevel,
    /// Execution providers to run the graphs on, in order of preference (empty: the CPU).
    /// A provider that cannot start makes [`Model::open`](crate::Model::open) fail, naming
    /// the graph, the provider and the cause, unless the CPU is acceptable (listed here, or
    /// [`RuntimeOptions::fallback_to_cpu`]); [`Model::placements`](crate::Model::placements)
    /// tells where each graph runs and what fell back.
    pub execution_providers: Vec<ExecutionProvider>,
    /// Let the CPU take over (default false): when the providers asked for cannot start,
    /// and for heavy operators (MatMul, Gemm, attention, layer norm, Conv) ONNX Runtime
    /// places on the CPU beside a GPU provider. Either is otherwise an error, so that a
    /// graph never runs its bulk on the CPU unnoticed.
    pub fallback_to_cpu: bool,
    /// How the package is opened: the precision of the towers to run, checksum
    /// verification and its cache.
    pub package: PackageOptions,
    /// Items per graph run in the `embed_*` methods of [`Model`](crate::Model), and
    /// images per batch of the streaming pipeline (default 32; at least 1).
    pub batch_size: usize,
    /// ONNX Runtime's CPU memory arena and memory-pattern planning (default on): faster
    /// repeated runs at one shape; off returns memory to the system after each run, for
    /// long-lived processes whose batch shapes vary a lot.
    pub memory_arena: bool,
    /// Whether idle intra-op threads spin a moment before sleeping (ONNX Runtime's
    /// default; off here). Measured on 2 cores with the shared pool (docs/performance.md):
    /// off, folder runs end to end were 4–11% faster (spinning threads take the cores
    /// that decoding needs between batches) and the int8 text tower ran about 1.4 times
    /// as fast; single graphs at batch 32 and one query through all three graphs were
    /// equal within the noise.
    pub intra_op_spinning: bool,
    /// Run every graph on ONNX Runtime's process-wide intra-op thread pool (default on)
    /// instead of a pool per session. One pool serves the vision, text and projection
    /// graphs in turn, so a pool that just finished never spins on cores the next graph
    /// needs, and a process holds one set of threads however many sessions it opens.
    /// The pool is made by the first model opened in the process, with that model's
    /// `intra_op_threads` and `intra_op_spinning`; a later model whose settings differ
    /// (or that asks for more than one inter-op thread) gets pools of its own, as with
    /// this off. [`Model::shares_thread_pool`](crate::Model::shares_thread_pool) tells
    /// which.
    pub shared_thread_pool: bool,
    /// How image files are read by [`Model::stream_image_files`](crate::Model::stream_image_files)
    /// and [`Model::embed_image_files`](crate::Model::embed_image_files): pixel limit,
    /// EXIF orientation, JPEG DCT scaling, decoding threads.
    pub image: ImageOptions,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            onnxruntime_library: None,
            intra_op_threads: None,
            inter_op_threads: None,
            max_sessions_per_graph: None,
            optimization_level: OptimizationLevel::All,
            execution_providers: Vec::new(),
            fallback_to_cpu: false,
            package: PackageOptions::default(),
            batch_size: 32,
            memory_arena: true,
            intra_op_spinning: false,
            shared_thread_pool: true,
            image: ImageOptions::default(),
        }
    }
}

impl RuntimeOptions {
    /// Sets [`RuntimeOptions::onnxruntime_library`].
    pub fn with_onnxruntime_library(mut self, library: impl Into<PathBuf>) -> Self {
        self.onnxruntime_library = Some(library.into());
        self
    }

    /// Sets [`RuntimeOptions::intra_op_threads`]: the threads each graph runs on (at most
    /// 256; more is clamped).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.intra_op_threads = Some(threads.min(MAX_INTRA_OP_THREADS));
        self
    }

    /// Sets [`RuntimeOptions::inter_op_threads`] (at most 64; more is clamped).
    pub fn with_inter_op_threads(mut self, threads: usize) -> Self {
        self.inter_op_threads = Some(threads.min(MAX_INTER_OP_THREADS));
        self
    }

    /// Sets [`RuntimeOptions::max_sessions_per_graph`].
    pub fn with_max_sessions_per_graph(mut self, sessions: usize) -> Self {
        self.max_sessions_per_graph = Some(sessions);
        self
    }

    /// Sets [`RuntimeOptions::optimization_level`].
    pub fn with_optimization_level(mut self, level: OptimizationLevel) -> Self {
        self.optimization_level = level;
        self
    }

    /// Sets [`RuntimeOptions::execution_providers`], in order of preference.
    pub fn with_execution_providers(mut self, providers: Vec<ExecutionProvider>) -> Self {
        self.execution_providers = providers;
        self
    }

    /// Sets [`RuntimeOptions::fallback_to_cpu`].
    pub fn with_cpu_fallback(mut self, fallback: bool) -> Self {
        self.fallback_to_cpu = fallback;
        self
    }

    /// Sets [`RuntimeOptions::package`].
    pub fn with_package_options(mut self, package: PackageOptions) -> Self {
        self.package = package;
        self
    }

    /// Sets the precision of the tower graphs to run ([`PackageOptions::precision`]).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.package.precision = precision;
        self
    }

    /// Turns checksum verification on open on or off
    /// ([`PackageOptions::verify_checksums`]).
    pub fn with_checksum_verification(mut self, verify: bool) -> Self {
        self.package.verify_checksums = verify;
        self
    }

    /// Sets [`RuntimeOptions::batch_size`] (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets [`RuntimeOptions::memory_arena`].
    pub fn with_memory_arena(mut self, on: bool) -> Self {
        self.memory_arena = on;
        self
    }

    /// Sets [`RuntimeOptions::intra_op_spinning`].
    pub fn with_spinning(mut self, on: bool) -> Self {
        self.intra_op_spinning = on;
        self
    }

    /// Sets [`RuntimeOptions::shared_thread_pool`].
    pub fn with_shared_thread_pool(mut self, on: bool) -> Self {
        self.shared_thread_pool = on;
        self
    }

    /// Sets [`RuntimeOptions::image`].
    pub fn with_image_options(mut self, image: ImageOptions) -> Self {
        self.image = image;
        self
    }

    pub(crate) fn session_config(&self) -> SessionConfig {
        let defaults = SessionConfig::default();
        SessionConfig {
            // Fields set directly are clamped here, as the builders clamp.
            intra_op_threads: self.intra_op_threads.map(|n| n.min(MAX_INTRA_OP_THREADS)),
            inter_op_threads: self.inter_op_threads.map(|n| n.min(MAX_INTER_OP_THREADS)),
            optimization_level: self.optimization_level,
            execution_providers: self.execution_providers.clone(),
            fallback_to_cpu: self.fallback_to_cpu,
            max_sessions: self.max_sessions_per_graph.unwrap_or(defaults.max_sessions),
            memory_arena: self.memory_arena,
            intra_op_spinning: self.intra_op_spinning,
            // Decided in `Model::open`, once the environment's pool is known.
            shared_pool: false,
        }
    }

    /// The shared thread pool these options would make as the first in the process.
    pub(crate) fn wanted_shared_pool(&self) -> SharedThreadPool {
        SharedThreadPool {
            intra_op_threads: self
                .intra_op_threads
                .map_or(0, |n| n.min(MAX_INTRA_OP_THREADS)),
            spinning: self.intra_op_spinning,
        }
    }

    /// Whether a model opened with these options runs on `pool`, the environment's.
    pub(crate) fn fits_shared_pool(&self, pool: SharedThreadPool) -> bool {
        self.shared_thread_pool
            && self.inter_op_threads.is_none_or(|n| n <= 1)
            && self.wanted_shared_pool() == pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options() {
        let o = RuntimeOptions::default();
        assert!(o.package.verify_checksums);
        assert!(!o.fallback_to_cpu, "strict: no silent CPU fallback");
        assert_eq!(o.batch_size, 32);
        assert_eq!(o.session_config().max_sessions, 2);
    }

    #[test]
    fn builders_set_their_fields() {
        let o = RuntimeOptions::default()
            .with_threads(3)
            .with_batch_size(0)
            .with_precision(Precision::Int8)
            .with_spinning(true);
        assert_eq!(o.intra_op_threads, Some(3));
        assert_eq!(o.batch_size, 1);
        assert_eq!(o.package.precision, Precision::Int8);
        assert!(o.session_config().intra_op_spinning);
    }

    #[test]
    fn a_model_fits_the_shared_pool_only_with_the_pools_settings() {
        let default_pool = RuntimeOptions::default().wanted_shared_pool();
        assert_eq!(
            default_pool,
            SharedThreadPool {
                intra_op_threads: 0,
                spinning: false
            }
        );
        assert!(RuntimeOptions::default().fits_shared_pool(default_pool));
        let two = RuntimeOptions::default().with_threads(2);
        assert!(!two.fits_shared_pool(default_pool));
        assert!(two.fits_shared_pool(two.wanted_shared_pool()));
        for (what, o) in [
            ("spinning", RuntimeOptions::default().with_spinning(true)),
            (
                "opted out",
                RuntimeOptions::default().with_shared_thread_pool(false),
            ),
            (
                "inter-op",
                RuntimeOptions::default().with_inter_op_threads(2),
            ),
        ] {
            assert!(!o.fits_shared_pool(default_pool), "{what}");
        }
        // One inter-op thread is the sequential executor the pool serves.
        let sequential = RuntimeOptions::default().with_inter_op_threads(1);
        assert!(sequential.fits_shared_pool(default_pool));
    }

    #[test]
    fn thread_counts_are_bounded() {
        // The bounds (256 intra-op, 64 inter-op threads per session) are the documented
        // ones; 4096 of either hangs ONNX Runtime.
        let o = RuntimeOptions::default()
            .with_threads(4096)
            .with_inter_op_threads(4096);
        assert_eq!(o.intra_op_threads, Some(256));
        assert_eq!(o.inter_op_threads, Some(64));
        // Set directly, the fields are clamped where the session is configured.
        let o = RuntimeOptions {
            intra_op_threads: Some(100_000),
            inter_op_threads: Some(100_000),
            ..RuntimeOptions::default()
        };
        let c = o.session_config();
        assert_eq!(
            (c.intra_op_threads, c.inter_op_threads),
            (Some(256), Some(64))
        );
        // Values within the bounds pass unchanged.
        let o = RuntimeOptions::default()
            .with_threads(256)
            .with_inter_op_threads(3);
        let c = o.session_config();
        assert_eq!(
            (c.intra_op_threads, c.inter_op_threads),
            (Some(256), Some(3))
        );
    }
}
