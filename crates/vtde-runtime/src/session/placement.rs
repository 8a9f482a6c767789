//! Where ONNX Runtime placed a graph's nodes, read from its own log.
//!
//! ONNX Runtime has no API for node placement; it logs it, at the verbose level, when a
//! session is created (`VerifyEachNodeIsAssignedToAnEp` in `session_state.cc`):
//!
//! ```text
//! Node placements
//!  All nodes placed on [CPUExecutionProvider]. Number of nodes: 69
//! ```
//!
//! or, when several providers share a graph, one block per provider:
//!
//! ```text
//!  Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 340
//!    MatMul (/encoder/layer.0/attention/MatMul)
//!    ...
//! ```
//!
//! The environment's logger ([`log_message`]) keeps these lines while a session is being
//! created on the current thread ([`capture`]) and forwards warnings and errors to stderr
//! as ONNX Runtime's default logger would. The verbose level is on only while some thread
//! creates a session: at run time the environment logs warnings and up, as before.

use std::cell::RefCell;
use std::sync::Mutex;

use ort::logging::LogLevel;
use vtde_package::GraphKind;

use super::provider::CPU_PROVIDER;

thread_local! {
    /// The lines captured on this thread, while a session is being created here.
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Threads creating a session right now: the environment logs verbosely while any does.
static CAPTURING: Mutex<usize> = Mutex::new(0);

/// The environment's logger: see the module documentation.
pub(crate) fn log_message(
    level: LogLevel,
    category: &str,
    id: &str,
    location: &str,
    message: &str,
) {
    let kept = CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(lines) if location.contains("VerifyEachNodeIsAssignedToAnEp") => {
            lines.push(message.to_owned());
            true
        }
        _ => false,
    });
    if kept {
        return;
    }
    let tag = match level {
        LogLevel::Warning => 'W',
        LogLevel::Error => 'E',
        LogLevel::Fatal => 'F',
        LogLevel::Verbose | LogLevel::Info => return,
    };
    eprintln!("[{tag}:{category}:{id}, {location}] {message}");
}

/// Runs `create` (which creates one session on this thread) with the environment at the
/// verbose level, and returns its result with the placement lines it logged.
pub(crate) fn capture<R>(
    environment: &ort::environment::Environment,
    create: impl FnOnce() -> R,
) -> (R, Vec<String>) {
    {
        let mut n = CAPTURING.lock().unwrap_or_else(|e| e.into_inner());
        if *n == 0 {
            environment.set_log_level(LogLevel::Verbose);
        }
        *n += 1;
    }
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let result = create();
    let lines = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    {
        let mut n = CAPTURING.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            environment.set_log_level(LogLevel::Warning);
        }
    }
    (result, lines)
}

/// Operators whose place decides a graph's speed: on the CPU beside a GPU provider they
/// run the bulk of the work there. Reported as an error unless CPU fallback is allowed.
pub(crate) const HEAVY_OPERATORS: &[&str] = &[
    "Attention",
    "Conv",
    "EmbedLayerNormalization",
    "FusedConv",
    "FusedMatMul",
    "Gemm",
    "LayerNormalization",
    "MatMul",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "MultiHeadAttention",
    "QAttention",
    "SimplifiedLayerNormalization",
    "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization",
];

/// Where one graph runs: the provider that took it and where its nodes went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphPlacement {
    /// The graph.
    pub graph: GraphKind,
    /// The provider registered for the graph (ONNX Runtime's name, e.g.
    /// `CUDAExecutionProvider`); `CPUExecutionProvider` when only the CPU is.
    pub provider: String,
    /// Nodes per provider, as ONNX Runtime placed them (after its graph optimizations).
    pub nodes: Vec<(String, usize)>,
    /// The operator types (with node names) ONNX Runtime kept on the CPU beside another
    /// provider: shape computations on purpose, or operators the provider lacks.
    pub cpu_nodes: Vec<String>,
    /// Why the providers asked for did not start, when the graph fell back to the CPU
    /// (or to a later provider of the list).
    pub fallback: Option<String>,
}

impl GraphPlacement {
    /// The heavy operators (MatMul, Gemm, attention, layer norm, Conv and their fused
    /// forms) among [`GraphPlacement::cpu_nodes`].
    pub fn heavy_cpu_nodes(&self) -> Vec<&str> {
        self.cpu_nodes
            .iter()
            .map(String::as_str)
            .filter(|n| {
                let op = n.split(' ').next().unwrap_or_default();
                HEAVY_OPERATORS.contains(&op)
            })
            .collect()
    }

    /// Whether every node runs on the CPU.
    pub fn on_cpu_only(&self) -> bool {
        self.nodes.iter().all(|(p, _)| p == CPU_PROVIDER)
    }
}

/// Reads the placement lines of one session (see the module documentation).
pub(crate) fn parse(
    graph: GraphKind,
    provider: &str,
    lines: &[String],
    fallback: Option<String>,
) -> GraphPlacement {
    let mut nodes: Vec<(String, usize)> = Vec::new();
    let mut cpu_nodes = Vec::new();
    let mut current: Option<String> = None;
    for line in lines {
        let trimmed = line.trim();
        let header = trimmed
            .strip_prefix("All nodes placed on [")
            .or_else(|| trimmed.strip_prefix("Node(s) placed on ["));
        if let Some(rest) = header {
            let (name, count) = match rest.split_once("]. Number of nodes: ") {
                Some((name, count)) => (name, count.trim().parse().unwrap_or(0)),
                None => (rest.trim_end_matches(']'), 0),
            };
            nodes.push((name.to_owned(), count));
            current = Some(name.to_owned());
        } else if current.as_deref() == Some(CPU_PROVIDER) && !trimmed.is_empty() {
            // A multi-provider block lists its nodes as "OpType (node name)".
            cpu_nodes.push(trimmed.to_owned());
        }
    }
    if nodes.len() <= 1 {
        // All on one provider: nothing sits on the CPU beside another one.
        cpu_nodes.clear();
    }
    GraphPlacement {
        graph,
        provider: provider.to_owned(),
        nodes,
        cpu_nodes,
        fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn all_nodes_on_one_provider() {
        // As ONNX Runtime 1.31 logs it for the demo package's text graph.
        let p = parse(
            GraphKind::Text,
            CPU_PROVIDER,
            &lines(
                "Node placements\n All nodes placed on [CPUExecutionProvider]. Number of nodes: 69",
            ),
            None,
        );
        assert_eq!(p.nodes, [(CPU_PROVIDER.to_owned(), 69)]);
        assert!(p.on_cpu_only());
        assert!(p.cpu_nodes.is_empty());
    }

    #[test]
    fn split_placement_lists_the_cpu_nodes_and_finds_heavy_ones() {
        let log = "Node placements
 Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 3
   MatMul (/layer.0/MatMul)
   Add (/layer.0/Add)
   Softmax (/layer.0/Softmax)
 Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2
   Shape (/Shape)
   MatMul (/layer.1/MatMul)";
        let p = parse(
            GraphKind::Vision,
            "CUDAExecutionProvider",
            &lines(log),
            None,
        );
        assert_eq!(
            p.nodes,
            [
                ("CUDAExecutionProvider".to_owned(), 3),
                (CPU_PROVIDER.to_owned(), 2)
            ]
        );
        assert_eq!(p.cpu_nodes, ["Shape (/Shape)", "MatMul (/layer.1/MatMul)"]);
        assert_eq!(p.heavy_cpu_nodes(), ["MatMul (/layer.1/MatMul)"]);
        assert!(!p.on_cpu_only());
    }
}
