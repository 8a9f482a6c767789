//! GPU execution against the CPU, for `tools/gpu-check.sh` on a machine with an NVIDIA
//! GPU and the GPU build of ONNX Runtime (`bash tools/fetch-onnxruntime.sh --gpu`).
//!
//! Skipped (passing, with a note) unless `VTDE_GPU_TESTS=1`: CI and this project's
//! development machines have no GPU. With it, every fixture's embeddings from CUDA fp32
//! and fp16 (and TensorRT fp16 when `VTDE_GPU_TENSORRT=1`) are compared with the CPU's
//! fp32 ones on the recorded inputs: cosine ≥ 0.9999 for fp32 and ≥ 0.999 for fp16
//! (`docs/design.md`), with CPU fallback never allowed, so a graph that would not run on
//! the GPU fails the test. Run with `--nocapture --test-threads 1` for the table.

use ndarray::Array2;
use vtde_runtime::{ExecutionProvider, Model, Precision, RuntimeOptions};
use vtde_tests::{exported_package_with_variants, fixture_configs, min_row_cosine, Fixture};

const FP32_COSINE: f32 = 0.9999;
const FP16_COSINE: f32 = 0.999;

fn enabled(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

fn embeddings(fx: &Fixture, options: &RuntimeOptions) -> (Array2<f32>, Array2<f32>) {
    let model = Model::open(exported_package_with_variants(&fx.name), options)
        .unwrap_or_else(|e| panic!("{}: {e}", fx.name));
    for placement in model.placements() {
        println!(
            "{:>18} {}: {} {:?}",
            fx.name, placement.graph, placement.provider, placement.nodes
        );
    }
    fx.embeddings(&model)
}

#[test]
fn gpu_embeddings_match_the_cpu() {
    if !enabled("VTDE_GPU_TESTS") {
        eprintln!(
            "SKIPPED: set VTDE_GPU_TESTS=1 on a machine with an NVIDIA GPU (tools/gpu-check.sh)"
        );
        return;
    }
    let mut runs: Vec<(&str, ExecutionProvider, Precision, f32)> = vec![
        (
            "CUDA fp32",
            ExecutionProvider::cuda(0),
            Precision::Fp32,
            FP32_COSINE,
        ),
        (
            "CUDA fp16",
            ExecutionProvider::cuda(0),
            Precision::Fp16,
            FP16_COSINE,
        ),
    ];
    if enabled("VTDE_GPU_TENSORRT") {
        runs.push((
            "TensorRT fp16",
            ExecutionProvider::tensorrt(0),
            Precision::Fp16,
            FP16_COSINE,
        ));
    }
    println!("| fixture | run | image cosine | text cosine | gate |\n|---|---|---|---|---|");
    for config in fixture_configs() {
        let fx = Fixture::load(&config);
        let (image_cpu, text_cpu) = embeddings(&fx, &RuntimeOptions::default());
        for (name, provider, precision, gate) in &runs {
            let options = RuntimeOptions::default()
                .with_execution_providers(vec![provider.clone()])
                .with_precision(*precision);
            let (image, text) = embeddings(&fx, &options);
            let image_cos = min_row_cosine(image.view(), image_cpu.view());
            let text_cos = min_row_cosine(text.view(), text_cpu.view());
            println!("| {config} | {name} | {image_cos:.6} | {text_cos:.6} | {gate} |");
            assert!(
                image_cos >= *gate,
                "{config} {name}: image cosine {image_cos}"
            );
            assert!(text_cos >= *gate, "{config} {name}: text cosine {text_cos}");
        }
    }
}
