//! ONNX Runtime sessions that many threads can use at once.
//!
//! In `ort` 2.0.0-rc.15 `Session::run` takes `&mut self`: ONNX Runtime's `Run` is not
//! reliably thread-safe for every execution provider, so one session serves one call at
//! a time. A [`SessionPool`] holds, per graph, a checkout/return pool of sessions behind
//! a `Mutex<Vec<Session>>` and a `Condvar`:
//!
//! - a caller takes an idle session, runs it *outside* the lock, and puts it back;
//! - when none is idle and fewer than `max_sessions` exist, the caller creates one
//!   (also outside the lock, as creation takes a while);
//! - at the cap, the caller waits for a session to come back.
//!
//! Why this and not one session per thread or one locked session: sessions are created
//! lazily, so a single-threaded program keeps exactly one session (one copy of the
//! weights) per graph, while concurrent callers get their own sessions up to the cap
//! instead of queueing behind one lock. The cap bounds memory, since every session holds
//! its own copy of the weights. On a CPU one session already uses every core through the
//! intra-op threads, so the default cap is small; more sessions help with GPU execution
//! providers and with many small requests.
//!
//! Threads: sessions run on ONNX Runtime's process-wide intra-op pool (see the
//! `onnxruntime` module and [`RuntimeOptions::shared_thread_pool`](crate::RuntimeOptions)),
//! so two sessions running at once share its threads instead of each starting its own;
//! with [`SessionConfig::shared_pool`] off each session has a pool of its own, sized and
//! spinning as the config says.
//!
//! The pool also checks, when the first session is created, that the graph has the
//! inputs and outputs the package contract names, and runs each graph with only the
//! outputs the runtime needs (optional outputs such as `last_hidden_state` are not
//! computed).

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use ort::session::Session;
use vtde_package::{Dim, ElementType, GraphKind, TensorSpec};

use crate::error::{Error, Result};
use crate::onnxruntime::OnnxRuntime;

pub(crate) mod placement;
mod provider;

pub use self::placement::GraphPlacement;
pub(crate) use self::provider::GraphTarget;
use self::provider::CPU_PROVIDER;
pub use self::provider::{
    CoreMlComputeUnits, CoreMlOptions, ExecutionProvider, OptimizationLevel, TensorRtOptions,
};

/// How sessions are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionConfig {
    /// Threads inside one operator (ONNX Runtime's default: one per physical core).
    pub intra_op_threads: Option<usize>,
    /// Threads running independent operators in parallel; more than 1 turns on ONNX
    /// Runtime's parallel execution mode (default: sequential).
    pub inter_op_threads: Option<usize>,
    /// Graph optimization level.
    pub optimization_level: OptimizationLevel,
    /// Execution providers to try, in order (empty: the CPU).
    pub execution_providers: Vec<ExecutionProvider>,
    /// Whether the CPU may take over when the providers asked for cannot start, and may
    /// run heavy operators beside them.
    pub fallback_to_cpu: bool,
    /// Most sessions per graph (at least 1).
    pub max_sessions: usize,
    /// ONNX Runtime's CPU memory arena and memory-pattern planning (default on): faster
    /// repeated runs at one shape; off returns memory to the system after each run, for
    /// long-lived processes whose batch shapes vary a lot.
    pub memory_arena: bool,
    /// Whether idle intra-op threads spin before sleeping (a session's own pool only).
    pub intra_op_spinning: bool,
    /// Run on the environment's shared intra-op pool; the thread settings above then do
    /// not apply (they are the pool's already).
    pub shared_pool: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            intra_op_threads: None,
            inter_op_threads: None,
            optimization_level: OptimizationLevel::All,
            execution_providers: Vec::new(),
            fallback_to_cpu: false,
            max_sessions: 2,
            memory_arena: true,
            intra_op_spinning: false,
            shared_pool: false,
        }
    }
}

/// Input and output names a graph must have.
#[derive(Debug, Clone)]
pub(crate) struct GraphContract {
    /// Inputs the runtime feeds (the graph must take exactly these).
    pub inputs: Vec<String>,
    /// Outputs the runtime reads (the graph may have more).
    pub outputs: Vec<String>,
    /// Shape profile and engine cache, for the providers that need them.
    pub target: GraphTarget,
    /// Element types and shapes of these inputs and outputs, as the manifest implies
    /// them: a fixed size the graph declares otherwise (its static `pixel_values` height
    /// and width, its output widths) is refused when the session is created.
    pub specs: Vec<TensorSpec>,
}

struct PoolState {
    idle: Vec<Session>,
    created: usize,
}

/// A pool of sessions of one graph; see the module documentation.
pub(crate) struct SessionPool {
    graph: GraphKind,
    path: PathBuf,
    config: SessionConfig,
    runtime: &'static OnnxRuntime,
    contract: GraphContract,
    /// Where the first session placed the graph (later ones are created alike).
    placement: GraphPlacement,
    state: Mutex<PoolState>,
    returned: Condvar,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("graph", &self.graph)
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SessionPool {
    /// Creates the pool and its first session, and checks the graph's contract.
    pub(crate) fn new(
        runtime: &'static OnnxRuntime,
        graph: GraphKind,
        path: &Path,
        config: &SessionConfig,
        contract: GraphContract,
    ) -> Result<Self> {
        let mut config = config.clone();
        config.max_sessions = config.max_sessions.max(1);
        // Fail early, before any ONNX Runtime work, on providers this build lacks.
        for ep in &config.execution_providers {
            ep.dispatch(&contract.target)?;
        }
        let mut pool = SessionPool {
            graph,
            path: path.to_path_buf(),
            config,
            runtime,
            contract,
            placement: placement::parse(graph, CPU_PROVIDER, &[], None),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                created: 1,
            }),
            returned: Condvar::new(),
        };
        let (first, placement) = pool.create_first_session()?;
        pool.check_contract(&first)?;
        pool.placement = placement;
        // Later sessions use the providers the first one settled on.
        let chosen = pool.placement.provider.clone();
        pool.config
            .execution_providers
            .retain(|ep| ep.onnxruntime_name() == chosen);
        pool.lock().idle.push(first);
        Ok(pool)
    }

    /// Where the graph runs.
    pub(crate) fn placement(&self) -> &GraphPlacement {
        &self.placement
    }

    /// Whether the sessions run on the environment's shared thread pool.
    pub(crate) fn shares_thread_pool(&self) -> bool {
        self.config.shared_pool
    }

    /// Number of sessions created so far.
    pub(crate) fn sessions_created(&self) -> usize {
        self.lock().created
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding the lock cannot leave PoolState inconsistent (pushes
        // and pops are atomic with respect to panics), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the first session on the providers asked for, in order, falling back as
    /// far as allowed (see [`ExecutionProvider`]), and reads where the nodes went.
    fn create_first_session(&self) -> Result<(Session, GraphPlacement)> {
        let c = &self.config;
        let requested: Vec<&ExecutionProvider> = c
            .execution_providers
            .iter()
            .filter(|ep| !ep.is_cpu())
            .collect();
        if requested.is_empty() {
            let (session, lines) = self.try_create(&[])?;
            return Ok((
                session,
                placement::parse(self.graph, CPU_PROVIDER, &lines, None),
            ));
        }
        let cpu_acceptable =
            c.fallback_to_cpu || c.execution_providers.iter().any(ExecutionProvider::is_cpu);
        let available = crate::onnxruntime::available_providers(self.runtime)?;
        let preload_problems = requested
            .iter()
            .any(|ep| {
                matches!(
                    ep,
                    ExecutionProvider::Cuda { .. } | ExecutionProvider::TensorRt(_)
                )
            })
            .then(|| crate::onnxruntime::preload_gpu_libraries(self.runtime))
            .flatten();
        let mut failures = Vec::new();
        let mut candidates = Vec::new();
        for ep in requested {
            if matches!(ep, ExecutionProvider::CoreMl(_)) && !cfg!(target_vendor = "apple") {
                failures.push(format!("{ep} runs only on macOS and iOS"));
            } else if !available.iter().any(|a| a == ep.onnxruntime_name()) {
                failures.push(format!(
                    "{ep}: the ONNX Runtime library {} was built without it (it has {}); \
                     for NVIDIA GPUs use the onnxruntime-gpu build (`bash \
                     tools/fetch-onnxruntime.sh --gpu`)",
                    self.runtime.library_path().display(),
                    available.join(", ")
                ));
            } else {
                candidates.push(ep);
            }
        }
        while !candidates.is_empty() {
            match self.try_create(&candidates) {
                Ok((session, lines)) => {
                    let fallback = (!failures.is_empty()).then(|| failures.join("; "));
                    let placement = placement::parse(
                        self.graph,
                        candidates[0].onnxruntime_name(),
                        &lines,
                        fallback,
                    );
                    let heavy = placement.heavy_cpu_nodes();
                    if !heavy.is_empty() && !c.fallback_to_cpu {
                        return Err(Error::HeavyOperatorsOnCpu {
                            graph: self.graph,
                            provider: candidates[0].name().to_owned(),
                            nodes: heavy.iter().map(|n| (*n).to_owned()).collect(),
                        });
                    }
                    return Ok((session, placement));
                }
                Err(e) if candidates.len() == 1 => {
                    let mut why = format!("{}: {}", candidates[0], session_message(&e));
                    if let Some(problems) = &preload_problems {
                        why.push_str(&format!(" (loading the GPU libraries: {problems})"));
                    }
                    failures.push(why);
                    candidates.clear();
                }
                Err(e) => {
                    // Find the providers that cannot start on their own; if each can,
                    // the failure is not theirs.
                    let before = candidates.len();
                    candidates.retain(|ep| match self.try_create(&[*ep]) {
                        Ok(_) => true,
                        Err(e) => {
                            failures.push(format!("{ep}: {}", session_message(&e)));
                            false
                        }
                    });
                    if candidates.len() == before {
                        return Err(e);
                    }
                }
            }
        }
        let cause = failures.join("; ");
        if !cpu_acceptable {
            return Err(Error::ProviderFailed {
                graph: self.graph,
                path: self.path.clone(),
                providers: c
                    .execution_providers
                    .iter()
                    .map(|ep| ep.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                cause,
            });
        }
        let (session, lines) = self.try_create(&[])?;
        let placement = placement::parse(self.graph, CPU_PROVIDER, &lines, Some(cause));
        Ok((session, placement))
    }

    /// A later session of the pool, on the provider the first one settled on.
    fn create_session(&self) -> Result<Session> {
        let eps: Vec<&ExecutionProvider> = self.config.execution_providers.iter().collect();
        self.try_create(&eps).map(|(session, _)| session)
    }

    /// Creates a session with `eps` (and the CPU last), capturing where its nodes went.
    fn try_create(&self, eps: &[&ExecutionProvider]) -> Result<(Session, Vec<String>)> {
        let environment = self.runtime.environment();
        let (session, lines) =
            placement::capture(environment, || self.build_session(environment, eps));
        Ok((session?, lines))
    }

    fn build_session(
        &self,
        environment: &ort::environment::Environment,
        eps: &[&ExecutionProvider],
    ) -> Result<Session> {
        let err = |message: String| Error::Session {
            graph: self.graph,
            path: self.path.clone(),
            message,
        };
        let c = &self.config;
        let mut builder = Session::builder(environment).map_err(|e| err(e.to_string()))?;
        builder = builder
            .with_optimization_level(c.optimization_level.to_ort())
            .map_err(|e| err(e.to_string()))?
            .with_log_level(ort::logging::LogLevel::Verbose)
            .map_err(|e| err(e.to_string()))?;
        if !c.shared_pool {
            // `ort` puts a session on the environment's pool unless told otherwise.
            builder = builder
                .with_independent_thread_pool()
                .map_err(|e| err(e.to_string()))?;
            if let Some(n) = c.intra_op_threads {
                builder = builder
                    .with_intra_threads(n)
                    .map_err(|e| err(e.to_string()))?;
            }
            if let Some(n) = c.inter_op_threads {
                builder = builder
                    .with_inter_threads(n)
                    .map_err(|e| err(e.to_string()))?
                    .with_parallel_execution(n > 1)
                    .map_err(|e| err(e.to_string()))?;
            }
            builder = builder
                .with_intra_op_spinning(c.intra_op_spinning)
                .map_err(|e| err(e.to_string()))?;
        }
        if !c.memory_arena {
            builder = builder
                .with_memory_pattern(false)
                .map_err(|e| err(e.to_string()))?;
        }
        if !eps.is_empty() || !c.memory_arena {
            let mut dispatch = eps
                .iter()
                .map(|ep| ep.dispatch(&self.contract.target))
                .collect::<Result<Vec<_>>>()?;
            // The arena is a setting of the CPU provider, so it is registered explicitly
            // (last: it takes what the others leave).
            dispatch.push(
                ort::ep::CPU::default()
                    .with_arena_allocator(c.memory_arena)
                    .build(),
            );
            builder = builder
                .with_execution_providers(dispatch)
                .map_err(|e| err(e.to_string()))?;
        }
        builder
            .commit_from_file(&self.path)
            .map_err(|e| err(e.to_string()))
    }

    fn check_contract(&self, session: &Session) -> Result<()> {
        let err = |message: String| Error::GraphContract {
            graph: self.graph,
            path: self.path.clone(),
            message,
        };
        let mut have: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
        let mut want: Vec<&str> = self.contract.inputs.iter().map(String::as_str).collect();
        have.sort_unstable();
        want.sort_unstable();
        if have != want {
            return Err(err(format!(
                "expected inputs {want:?}, the graph has {have:?}"
            )));
        }
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        for name in &self.contract.outputs {
            if !outputs.contains(&name.as_str()) {
                return Err(err(format!(
                    "missing output `{name}`; the graph has {outputs:?}"
                )));
            }
        }
        for spec in &self.contract.specs {
            let outlet = session
                .inputs()
                .iter()
                .chain(session.outputs())
                .find(|o| o.name() == spec.name);
            if let Some(outlet) = outlet {
                check_spec(spec, outlet.dtype()).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Takes a session (waiting or creating one as needed), runs `f` with it, and puts it
    /// back, also when `f` fails.
    pub(crate) fn with_session<R>(&self, f: impl FnOnce(&mut Session) -> Result<R>) -> Result<R> {
        let mut checkout = self.checkout()?;
        match checkout.session.as_mut() {
            Some(session) => f(session),
            None => Err(Error::Inference {
                graph: self.graph,
                message: "session pool returned no session".into(),
            }),
        }
    }

    fn checkout(&self) -> Result<Checkout<'_>> {
        let mut state = self.lock();
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(Checkout {
                    pool: self,
                    session: Some(session),
                });
            }
            if state.created < self.config.max_sessions {
                state.created += 1;
                drop(state);
                return match self.create_session() {
                    Ok(session) => Ok(Checkout {
                        pool: self,
                        session: Some(session),
                    }),
                    Err(e) => {
                        self.lock().created -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Checks a graph input or output (`dtype`, as ONNX Runtime reads the graph) against
/// the contract's `spec`: a tensor of the element type, of the rank, with each fixed
/// dimension either that size or dynamic. An unknown shape (no dimensions) is left to
/// the run.
fn check_spec(spec: &TensorSpec, dtype: &ort::value::ValueType) -> std::result::Result<(), String> {
    use ort::value::TensorElementType;
    let name = &spec.name;
    let (Some(element), Some(shape)) = (dtype.tensor_type(), dtype.tensor_shape()) else {
        return Err(format!("`{name}` is not a tensor"));
    };
    let want = match spec.element {
        ElementType::F32 => TensorElementType::Float32,
        ElementType::I64 => TensorElementType::Int64,
    };
    if element != want {
        return Err(format!(
            "`{name}` holds {element}, the contract says {want}"
        ));
    }
    let dims: &[i64] = shape;
    if dims.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = dims
        .iter()
        .map(|&d| if d < 0 { "?".to_owned() } else { d.to_string() })
        .collect();
    let agrees = dims.len() == spec.dims.len()
        && dims.iter().zip(&spec.dims).all(|(&have, want)| match want {
            Dim::Fixed(n) if have >= 0 => usize::try_from(have).is_ok_and(|h| h == *n),
            _ => true,
        });
    if agrees {
        Ok(())
    } else {
        Err(format!(
            "`{name}` has shape [{}], but the manifest's {} imply {spec}",
            shown.join(", "),
            spec.fields
        ))
    }
}

/// A session taken from the pool; goes back on drop.
struct Checkout<'p> {
    pool: &'p SessionPool,
    session: Option<Session>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.pool.lock().idle.push(session);
            self.pool.returned.notify_one();
        }
    }
}

/// Runs `session` with `inputs` and returns the named f32 outputs as 2-D arrays.
pub(crate) fn run_f32_2d(
    graph: GraphKind,
    session: &mut Session,
    inputs: Vec<(&'static str, ort::session::SessionInputValue<'_>)>,
    outputs: &[&str],
) -> Result<Vec<ndarray::Array2<f32>>> {
    let err = |message: String| Error::Inference { graph, message };
    let mut selector = ort::session::OutputSelector::no_default();
    for name in outputs {
        selector = selector.with(*name);
    }
    let options = ort::session::RunOptions::new()
        .map_err(|e| err(e.to_string()))?
        .with_outputs(selector);
    let inputs: Vec<(
        std::borrow::Cow<'static, str>,
        ort::session::SessionInputValue<'_>,
    )> = inputs
        .into_iter()
        .map(|(name, value)| (std::borrow::Cow::Borrowed(name), value))
        .collect();
    let result = session
        .run_with_options(inputs, &options)
        .map_err(|e| err(e.to_string()))?;
    outputs
        .iter()
        .map(|name| {
            let value = result
                .get(*name)
                .ok_or_else(|| err(format!("output `{name}` missing from the results")))?;
            let array = value
                .try_extract_array::<f32>()
                .map_err(|e| err(format!("output `{name}`: {e}")))?;
            array
                .into_dimensionality::<ndarray::Ix2>()
                .map(|a| a.to_owned())
                .map_err(|_| err(format!("output `{name}` is not 2-D")))
        })
        .collect()
}

/// The message of a session error, without the graph and path the caller names anyway,
/// nor ONNX Runtime's source location and status prefix (`/onnxruntime_src/...cc:2043
/// ... [ONNXRuntimeError] : 1 : FAIL : `), on one line.
fn session_message(e: &Error) -> String {
    let message = match e {
        Error::Session { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let core = match message.find("[ONNXRuntimeError] : ") {
        // "[ONNXRuntimeError] : <code> : <NAME> : <text>"
        Some(i) => message[i..]
            .splitn(4, " : ")
            .nth(3)
            .unwrap_or(&message[i..])
            .to_owned(),
        None => message,
    };
    core.split_whitespace().collect::<Vec<_>>().join(" ")
}
