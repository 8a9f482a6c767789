//! Execution providers from the command line, on this machine's CPU-only ONNX Runtime
//! (the PyPI build, which has no GPU provider): asking for one is an error naming the
//! graph, the provider and the cause; `--allow-cpu-fallback` runs on the CPU with one
//! warning; `vtde info` names the CPU for each graph, from ONNX Runtime's own placement
//! log. The GPU side is `tools/gpu-check.sh`, on a machine with an NVIDIA GPU.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vtde(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vtde"))
        .args(args)
        .output()
        .expect("vtde runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn demo() -> String {
    repo().join("models/demo").display().to_string()
}

fn image() -> String {
    repo()
        .join("models/examples/red_circle.png")
        .display()
        .to_string()
}

/// The CPU-only library that `tools/fetch-onnxruntime.sh` installs, named explicitly: a
/// GPU build fetched beside it (`--gpu`) would otherwise be preferred for GPU providers.
fn cpu_library() -> String {
    let cache = std::env::var_os("VTDE_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache"));
    cache.join("onnxruntime/1.31.1").display().to_string()
}

fn score(extra: &[&str]) -> Output {
    let (demo, image, library) = (demo(), image(), cpu_library());
    let mut args = vec![
        "score",
        demo.as_str(),
        image.as_str(),
        "--labels",
        "a red circle",
        "a blue square",
        "--onnxruntime",
        library.as_str(),
    ];
    args.extend_from_slice(extra);
    vtde(&args)
}

#[test]
fn a_gpu_provider_the_library_lacks_is_an_error_naming_graph_provider_and_cause() {
    for provider in ["cuda", "tensorrt"] {
        let out = score(&["--provider", provider]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{provider}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{provider}: no results without the provider"
        );
        let name = if provider == "cuda" {
            "CUDA"
        } else {
            "TensorRT"
        };
        assert!(
            err.contains("vision graph") && err.contains("vision.onnx"),
            "{err}"
        );
        assert!(err.contains(&format!("cannot run on {name}")), "{err}");
        assert!(err.contains("built without it"), "{err}");
        assert!(err.contains("--allow-cpu-fallback"), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn cpu_fallback_runs_on_the_cpu_with_one_warning_and_the_same_results() {
    let cpu = score(&[]);
    assert_eq!(cpu.status.code(), Some(0), "{}", text(&cpu.stderr));
    for extra in [
        &["--provider", "cuda", "--allow-cpu-fallback"][..],
        &["--provider", "tensorrt", "--provider", "cpu"][..],
    ] {
        let out = score(extra);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {err}");
        assert_eq!(
            out.stdout, cpu.stdout,
            "{extra:?}: same scores as on the CPU"
        );
        let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
        assert_eq!(warnings.len(), 1, "{extra:?}: one warning: {err}");
        assert!(
            warnings[0].contains("vision, text, projection graphs fell back to the CPU"),
            "{err}"
        );
    }
    assert!(
        !text(&cpu.stderr).contains("warning"),
        "no warning on the CPU itself"
    );
}

#[test]
fn info_names_the_provider_of_each_graph_and_the_library() {
    let demo = demo();
    let out = vtde(&["info", &demo]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for graph in ["vision", "text", "projection"] {
        let line = stdout
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("{graph} graph: CPUExecutionProvider"))
            })
            .unwrap_or_else(|| panic!("no placement line for the {graph} graph:\n{stdout}"));
        // The node count comes from ONNX Runtime's placement log.
        assert!(line.contains("nodes on CPUExecutionProvider"), "{line}");
    }
    assert!(stdout.contains("ONNX Runtime 1.31.1"), "{stdout}");
    assert!(stdout.contains("CPUExecutionProvider"), "{stdout}");
    assert!(stdout.contains("VisionTextDualEncoderModel"), "{stdout}");
    assert!(stdout.contains("64x64 pixel values"), "{stdout}");

    let library = cpu_library();
    let out = vtde(&[
        "info",
        &demo,
        "--provider",
        "cuda",
        "--allow-cpu-fallback",
        "--onnxruntime",
        &library,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stdout.matches("fell back: CUDA").count(), 3, "{stdout}");
}

#[test]
fn coreml_off_apple_and_int8_on_tensorrt_are_clear_errors() {
    let out = score(&["--provider", "coreml"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("CoreML runs only on macOS and iOS"), "{err}");

    let out = score(&["--provider", "tensorrt", "--run-precision", "int8"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot run on TensorRT") && err.contains("fp16"),
        "{err}"
    );
}

#[test]
fn warmup_opens_and_runs_every_graph_once() {
    let demo = demo();
    let out = vtde(&["warmup", &demo, "--batch-size", "4"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("vision graph: CPUExecutionProvider"),
        "{stdout}"
    );
    assert!(
        stdout.contains("first run of the three graphs at batch 4"),
        "{stdout}"
    );
}
