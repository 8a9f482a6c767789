//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: the library is opened at run time. `ort`'s own
//! implicit loader panics when it finds nothing, so the runtime always loads it
//! explicitly with [`ort::init_from`] before any other `ort` call, and turns every failure
//! into [`Error::OnnxRuntimeNotFound`], which lists each place it looked and the fix.
//!
//! Where the library is looked for, in order:
//! 1. [`RuntimeOptions::onnxruntime_library`](crate::RuntimeOptions), then
//! 2. the `ORT_DYLIB_PATH` environment variable. Either of these two, when given, is the
//!    only candidate: a path the user named that does not work is reported, not replaced
//!    silently by another library.
//! 3. Otherwise: beside the current executable, and in its parent folder (cargo's test
//!    binaries live in `target/*/deps`);
//! 4. the project cache that `tools/fetch-onnxruntime.sh` fills:
//!    `$VTDE_CACHE_DIR/onnxruntime/1.31.1/`, then `.cache/onnxruntime/1.31.1/` in the
//!    current folder or any folder above it, then in the workspace this crate was built
//!    from (found through `CARGO_MANIFEST_DIR` at compile time, the last resort).
//!
//! A candidate may name the library file itself or a folder that holds it.
//!
//! ONNX Runtime is loaded once per process and its environment lives until the process
//! ends. Later calls reuse it. A later call that names a *different* library explicitly
//! (through the options) gets [`Error::OnnxRuntimeAlreadyLoaded`]: a process cannot hold
//! two ONNX Runtimes, and silently ignoring the request would hide the mistake.
//! `ORT_DYLIB_PATH` and the search are only consulted for the first load.
//!
//! Behaviour of `ort` 2.0.0-rc.15 this relies on (read from its source and tested):
//! `ort::init_from(path)` dlopens the file and checks its API version, returning
//! `Err(LoadDynamicError)` for a missing file, a file that is not a shared library, a
//! library without `OrtGetApiBase`, or an ONNX Runtime older than the API level `ort`
//! was built for; on success it returns an `EnvironmentBuilder` whose `build()` creates
//! the process-wide environment. Once a library is loaded, `init_from` ignores its
//! argument and succeeds, which is why the runtime remembers the loaded path itself.
//!
//! The environment owns ONNX Runtime's *global* intra-op thread pool ([`SharedThreadPool`]),
//! which every session of every model uses unless its thread settings differ from the
//! pool's (see [`RuntimeOptions::shared_thread_pool`](crate::RuntimeOptions)). The pool
//! is made with the environment, so its size and spinning are those of the first load:
//! the first [`Model::open`](crate::Model::open) in a process decides them.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, LibraryAttempt, Result, ORT_FIX_HINT};

/// The ONNX Runtime version the runtime is built and tested against.
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";

/// The process-wide intra-op thread pool that sessions share: its size and whether its
/// idle threads spin. Made once, with the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedThreadPool {
    /// Threads (0: ONNX Runtime's default, one per physical core).
    pub intra_op_threads: usize,
    /// Whether idle threads spin before sleeping.
    pub spinning: bool,
}

impl Default for SharedThreadPool {
    /// The pool that default [`RuntimeOptions`](crate::RuntimeOptions) ask for.
    fn default() -> Self {
        crate::RuntimeOptions::default().wanted_shared_pool()
    }
}

/// A loaded ONNX Runtime: the library's path and the process-wide environment.
pub(crate) struct OnnxRuntime {
    path: PathBuf,
    environment: ort::environment::Environment,
    pool: SharedThreadPool,
}

impl OnnxRuntime {
    /// The library file that was loaded.
    pub(crate) fn library_path(&self) -> &Path {
        &self.path
    }

    /// The process-wide `ort` environment, in which every session is created.
    pub(crate) fn environment(&self) -> &ort::environment::Environment {
        &self.environment
    }

    /// The environment's shared intra-op thread pool.
    pub(crate) fn shared_pool(&self) -> SharedThreadPool {
        self.pool
    }
}

impl std::fmt::Debug for OnnxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxRuntime")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

static RUNTIME: OnceLock<OnnxRuntime> = OnceLock::new();
// Serialises the first load so that two threads opening models at once do not race to
// dlopen different candidates.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// The library's file names on this platform, most specific first.
fn library_file_names() -> &'static [&'static str] {
    if cfg!(target_os = "windows") {
        &["onnxruntime.dll"]
    } else if cfg!(target_os = "macos") {
        &["libonnxruntime.1.31.1.dylib", "libonnxruntime.dylib"]
    } else {
        &["libonnxruntime.so.1.31.1", "libonnxruntime.so"]
    }
}

/// A place to look, and where that place came from.
#[derive(Debug, Clone)]
struct Candidate {
    path: PathBuf,
    source: String,
}

/// Loads ONNX Runtime (once per process) and returns it.
///
/// `explicit` is [`RuntimeOptions::onnxruntime_library`](crate::RuntimeOptions): a
/// library file or a folder holding one. See the module documentation for the search
/// order and for what a second call does.
pub(crate) fn load(explicit: Option<&Path>) -> Result<&'static OnnxRuntime> {
    load_preferring_gpu(explicit, false, SharedThreadPool::default())
}

/// [`load`]; with `gpu`, the GPU build that `tools/fetch-onnxruntime.sh --gpu` lays out
/// (`onnxruntime/<version>-gpu/` beside each cache folder searched) comes before the CPU
/// one, so that asking for a GPU provider finds it with no path given. `pool` is the
/// shared thread pool to make if this call creates the environment (a later call gets
/// the pool the first one made).
pub(crate) fn load_preferring_gpu(
    explicit: Option<&Path>,
    gpu: bool,
    pool: SharedThreadPool,
) -> Result<&'static OnnxRuntime> {
    if let Some(rt) = RUNTIME.get() {
        return check_same(rt, explicit);
    }
    // A poisoned lock only means another thread panicked while loading; the state it
    // guards (RUNTIME) is still consistent, so carry on.
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return check_same(rt, explicit);
    }
    let env_var = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty());
    let searching = explicit.is_none() && env_var.is_none();
    let mut candidates = candidates(explicit, env_var.as_deref().map(Path::new));
    if gpu && searching {
        // Only when searching: a library the user named is the only candidate.
        candidates = with_gpu_builds_first(candidates);
    }
    let mut attempts = Vec::new();
    for candidate in expand_folders(candidates) {
        if !candidate.path.is_file() {
            attempts.push(LibraryAttempt {
                path: candidate.path,
                source: candidate.source,
                reason: "not found".into(),
            });
            continue;
        }
        match ort::init_from(&candidate.path) {
            Ok(builder) => {
                let init_error = |message: String| Error::OnnxRuntimeInit {
                    path: candidate.path.clone(),
                    message,
                };
                // Inter-op threads only serve parallel execution, which sessions on the
                // shared pool do not use (a model asking for it gets its own pools).
                let threading = ort::environment::GlobalThreadPoolOptions::default()
                    .with_intra_threads(pool.intra_op_threads)
                    .and_then(|t| t.with_inter_threads(1))
                    .and_then(|t| t.with_spin_control(pool.spinning))
                    .map_err(|e| init_error(e.to_string()))?;
                let environment = builder
                    .with_name("vtde")
                    .with_global_thread_pool(threading)
                    .with_telemetry(false)
                    .with_logger(std::sync::Arc::new(crate::session::placement::log_message))
                    .build()
                    .map_err(|e| init_error(e.to_string()))?;
                // `ort` creates a custom-logger environment at the verbose level; only
                // session creation needs that (see `session::placement`).
                environment.set_log_level(ort::logging::LogLevel::Warning);
                let rt = OnnxRuntime {
                    path: candidate.path,
                    environment,
                    pool,
                };
                return Ok(RUNTIME.get_or_init(|| rt));
            }
            Err(e) => attempts.push(LibraryAttempt {
                path: candidate.path,
                source: candidate.source,
                reason: e.to_string(),
            }),
        }
    }
    Err(Error::OnnxRuntimeNotFound {
        attempts,
        hint: ORT_FIX_HINT,
    })
}

/// Loads ONNX Runtime, once per process, and returns the library file in use.
///
/// `library` is a library file or a folder holding one; `None` searches as
/// [`RuntimeOptions::onnxruntime_library`](crate::RuntimeOptions::onnxruntime_library)
/// documents. [`Model::open`](crate::Model::open) does this itself: call it first only
/// to report, or fail on, a missing library early.
pub fn load_onnxruntime(library: Option<&Path>) -> Result<&'static Path> {
    load(library).map(OnnxRuntime::library_path)
}

/// The ONNX Runtime library in use: where it is, its version, and the execution providers
/// it was built with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnnxRuntimeInfo {
    /// The library file.
    pub path: PathBuf,
    /// Its version, from its build information (`1.31.1`), or the whole build string
    /// when it names none.
    pub version: String,
    /// The execution providers compiled into it, by ONNX Runtime's names
    /// (`CPUExecutionProvider`, `CUDAExecutionProvider`, ...).
    pub providers: Vec<String>,
}

/// Loads ONNX Runtime like [`load_onnxruntime`] and describes it.
pub fn onnxruntime_info(library: Option<&Path>) -> Result<OnnxRuntimeInfo> {
    let rt = load(library)?;
    Ok(OnnxRuntimeInfo {
        path: rt.path.clone(),
        version: library_version(&rt.path).unwrap_or_else(|| ort::info().to_owned()),
        providers: available_providers(rt)?,
    })
}

/// The version the library at `path` reports (`OrtGetApiBase()->GetVersionString()`).
/// The library is already loaded: opening it again takes a reference to the same copy.
fn library_version(path: &Path) -> Option<String> {
    type ApiBaseFn = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: `path` is the ONNX Runtime library this process has loaded (and keeps
    // loaded): its initialisers have run; `OrtGetApiBase` takes no arguments and returns
    // a pointer to a static table whose `GetVersionString` returns a static C string.
    unsafe {
        let library = libloading::Library::new(path).ok()?;
        let get_base: libloading::Symbol<'_, ApiBaseFn> = library.get(b"OrtGetApiBase").ok()?;
        let base = get_base();
        if base.is_null() {
            return None;
        }
        let version = ((*base).GetVersionString)();
        (!version.is_null()).then(|| {
            std::ffi::CStr::from_ptr(version)
                .to_string_lossy()
                .into_owned()
        })
    }
}

/// The execution providers compiled into the loaded library (ONNX Runtime's
/// `GetAvailableProviders`), whatever cargo features this crate has.
pub(crate) fn available_providers(rt: &OnnxRuntime) -> Result<Vec<String>> {
    let err = |message: String| Error::OnnxRuntimeInit {
        path: rt.path.clone(),
        message,
    };
    let api = ort::api();
    let mut names: *mut *mut std::ffi::c_char = std::ptr::null_mut();
    let mut count: std::ffi::c_int = 0;
    // SAFETY: ONNX Runtime is loaded (`rt` exists); the call fills `names` with `count`
    // NUL-terminated strings that stay valid until `ReleaseAvailableProviders`.
    let status = unsafe { (api.GetAvailableProviders)(&mut names, &mut count) };
    if !status.0.is_null() {
        // SAFETY: a non-null status is an error status owned by us; read, then release.
        let message = unsafe { std::ffi::CStr::from_ptr((api.GetErrorMessage)(status.0)) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { (api.ReleaseStatus)(status.0) };
        return Err(err(format!("GetAvailableProviders failed: {message}")));
    }
    let mut providers = Vec::new();
    if !names.is_null() {
        for i in 0..usize::try_from(count).unwrap_or(0) {
            // SAFETY: `i < count`, so the pointer is one of the strings ONNX Runtime gave.
            let name = unsafe { std::ffi::CStr::from_ptr(*names.add(i)) };
            providers.push(name.to_string_lossy().into_owned());
        }
        // SAFETY: releases exactly what `GetAvailableProviders` returned.
        let status = unsafe { (api.ReleaseAvailableProviders)(names, count) };
        if !status.0.is_null() {
            // SAFETY: an error status owned by us.
            unsafe { (api.ReleaseStatus)(status.0) };
        }
    }
    Ok(providers)
}

/// The ONNX Runtime library loaded in this process so far, if any.
pub fn loaded_onnxruntime() -> Option<&'static Path> {
    RUNTIME.get().map(OnnxRuntime::library_path)
}

fn check_same(rt: &'static OnnxRuntime, explicit: Option<&Path>) -> Result<&'static OnnxRuntime> {
    let Some(requested) = explicit else {
        return Ok(rt);
    };
    let matches = expand_folders(vec![Candidate {
        path: requested.to_path_buf(),
        source: String::new(),
    }])
    .iter()
    .any(|c| same_file(&c.path, &rt.path));
    if matches {
        Ok(rt)
    } else {
        Err(Error::OnnxRuntimeAlreadyLoaded {
            loaded: rt.path.clone(),
            requested: requested.to_path_buf(),
        })
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The candidates in search order (folders not yet expanded into file names).
fn candidates(explicit: Option<&Path>, env_var: Option<&Path>) -> Vec<Candidate> {
    if let Some(path) = explicit {
        return vec![Candidate {
            path: path.to_path_buf(),
            source: "RuntimeOptions::onnxruntime_library".into(),
        }];
    }
    if let Some(path) = env_var {
        return vec![Candidate {
            path: path.to_path_buf(),
            source: "ORT_DYLIB_PATH".into(),
        }];
    }
    let mut out = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        if let Some(parent) = exe_dir.parent() {
            let parent = parent.to_path_buf();
            out.push(Candidate {
                path: exe_dir,
                source: "beside the executable".into(),
            });
            out.push(Candidate {
                path: parent,
                source: "the executable's parent folder".into(),
            });
        } else {
            out.push(Candidate {
                path: exe_dir,
                source: "beside the executable".into(),
            });
        }
    }
    let rel: PathBuf = ["onnxruntime", ONNXRUNTIME_VERSION].iter().collect();
    if let Some(cache) = std::env::var_os("VTDE_CACHE_DIR").filter(|v| !v.is_empty()) {
        out.push(Candidate {
            path: PathBuf::from(cache).join(&rel),
            source: "$VTDE_CACHE_DIR".into(),
        });
    }
    if let Ok(cwd) = std::env::current_dir() {
        // The nearest `.cache/onnxruntime/<version>` above the current folder, so that
        // binaries run from anywhere inside a checkout find the fetched library.
        if let Some(dir) = cwd
            .ancestors()
            .map(|d| d.join(".cache").join(&rel))
            .find(|d| d.is_dir())
        {
            out.push(Candidate {
                path: dir,
                source: "project cache above the current folder".into(),
            });
        }
    }
    // CARGO_MANIFEST_DIR is crates/vtde-runtime; the workspace is two levels up.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    out.push(Candidate {
        path: workspace.join(".cache").join(&rel),
        source: "project cache of the workspace vtde-runtime was built in".into(),
    });
    dedup(out)
}

/// Puts `<cache>/onnxruntime/<version>-gpu` before each `<cache>/onnxruntime/<version>`.
fn with_gpu_builds_first(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for c in candidates {
        let is_cache = c.path.file_name().is_some_and(|n| n == ONNXRUNTIME_VERSION)
            && c.path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "onnxruntime");
        if is_cache {
            out.push(Candidate {
                path: c.path.with_file_name(format!("{ONNXRUNTIME_VERSION}-gpu")),
                source: format!("{} (GPU build)", c.source),
            });
        }
        out.push(c);
    }
    out
}

/// The file beside a library that lists the CUDA and cuDNN libraries to load before its
/// GPU providers, one file name per line, in dependency order
/// (`tools/fetch-onnxruntime.sh --gpu` writes it).
pub(crate) const PRELOAD_LIST: &str = "vtde-preload.txt";

/// Loads the libraries that [`PRELOAD_LIST`] beside the ONNX Runtime library names, once
/// per process, so that ONNX Runtime's CUDA and TensorRT providers find them (a library
/// already loaded satisfies later lookups of its name) with no `LD_LIBRARY_PATH`. Nothing
/// to do when there is no list. Returns the problems met, for the error message of a
/// provider that then cannot start.
pub(crate) fn preload_gpu_libraries(rt: &OnnxRuntime) -> Option<String> {
    static DONE: OnceLock<Option<String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = rt.path.parent()?;
        let list = std::fs::read_to_string(dir.join(PRELOAD_LIST)).ok()?;
        let mut problems = Vec::new();
        for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let path = dir.join(name);
            if let Err(e) = open_global(&path) {
                problems.push(format!("{}: {e}", path.display()));
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    })
    .clone()
}

/// Loads a shared library for good, its symbols visible to libraries loaded later.
#[cfg(unix)]
fn open_global(path: &Path) -> std::result::Result<(), String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LAZY};
    // SAFETY: the CUDA and cuDNN runtime libraries have no initialisers with
    // preconditions; the handle is leaked on purpose, so the library stays loaded.
    let library = unsafe { Library::open(Some(path), RTLD_LAZY | RTLD_GLOBAL) };
    library.map(std::mem::forget).map_err(|e| {
        // libloading's message is "dlopen failed"; the loader's reason is its source.
        match std::error::Error::source(&e) {
            Some(why) => why.to_string(),
            None => e.to_string(),
        }
    })
}

#[cfg(not(unix))]
fn open_global(path: &Path) -> std::result::Result<(), String> {
    // SAFETY: as above; Windows searches the folder of a loaded DLL for its dependencies.
    let library = unsafe { libloading::Library::new(path) };
    library.map(std::mem::forget).map_err(|e| e.to_string())
}

fn dedup(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut seen: Vec<PathBuf> = Vec::new();
    candidates
        .into_iter()
        .filter(|c| {
            let key = c.path.canonicalize().unwrap_or_else(|_| c.path.clone());
            if seen.contains(&key) {
                false
            } else {
                seen.push(key);
                true
            }
        })
        .collect()
}

/// Replaces each folder by the library file names inside it; files stay as they are.
fn expand_folders(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for c in candidates {
        if c.path.is_dir() {
            let found: Vec<Candidate> = library_file_names()
                .iter()
                .map(|name| Candidate {
                    path: c.path.join(name),
                    source: c.source.clone(),
                })
                .collect();
            // Report only the most specific name when none exists, to keep the list short.
            if found.iter().any(|f| f.path.is_file()) {
                out.extend(found.into_iter().filter(|f| f.path.is_file()));
            } else if let Some(first) = found.into_iter().next() {
                out.push(first);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_builds_come_before_each_cache_folder_only() {
        let c = |path: &str| Candidate {
            path: PathBuf::from(path),
            source: "s".into(),
        };
        let out = with_gpu_builds_first(vec![
            c("/opt/app/bin"),
            c("/cache/onnxruntime/1.31.1"),
            c("/other/1.31.1"),
        ]);
        let paths: Vec<&Path> = out.iter().map(|c| c.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                Path::new("/opt/app/bin"),
                Path::new("/cache/onnxruntime/1.31.1-gpu"),
                Path::new("/cache/onnxruntime/1.31.1"),
                Path::new("/other/1.31.1"),
            ]
        );
    }

    #[test]
    fn explicit_path_is_the_only_candidate() {
        let c = candidates(
            Some(Path::new("/nowhere/lib.so")),
            Some(Path::new("/env/lib.so")),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].path, Path::new("/nowhere/lib.so"));
        let c = candidates(None, Some(Path::new("/env/lib.so")));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].source, "ORT_DYLIB_PATH");
    }

    #[test]
    fn search_includes_exe_dir_and_workspace_cache() {
        let c = candidates(None, None);
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        if let Some(exe_dir) = exe_dir {
            assert!(c.iter().any(|c| c.path == exe_dir));
        }
        assert!(c
            .iter()
            .any(|c| c.path.ends_with(Path::new(".cache/onnxruntime/1.31.1"))));
    }

    #[test]
    fn folder_expands_to_library_names() {
        let dir = tempfile::tempdir().unwrap();
        let out = expand_folders(vec![Candidate {
            path: dir.path().to_path_buf(),
            source: "test".into(),
        }]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path, dir.path().join(library_file_names()[0]));
        let file = dir.path().join(library_file_names()[0]);
        std::fs::write(&file, b"x").unwrap();
        let out = expand_folders(vec![Candidate {
            path: dir.path().to_path_buf(),
            source: "test".into(),
        }]);
        assert_eq!(out[0].path, file);
    }
}
