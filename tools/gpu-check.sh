#!/usr/bin/env bash
# The GPU check of vtde, for a machine with an NVIDIA GPU (driver for CUDA 13), Rust and
# Python 3. One script:
#   1. lays out the GPU build of ONNX Runtime with its CUDA and cuDNN libraries
#      (tools/fetch-onnxruntime.sh --gpu);
#   2. runs the GPU tests (tests/gpu.rs, VTDE_GPU_TESTS=1): every fixture's embeddings
#      on CUDA fp32 and fp16 (and TensorRT fp16 where TensorRT is installed) against the
#      CPU, cosine >= 0.9999 (fp32) and >= 0.999 (fp16), no CPU fallback allowed;
#   3. measures a CLIP ViT-B/32-sized package (random weights, real sizes; needs a Python
#      with torch and transformers, e.g. `tools/reference-env.sh`, else this step is
#      skipped with a note): images/s at batch 1, 32 and 256 and texts/s, on the CPU,
#      CUDA fp32, CUDA fp16 and, where TensorRT is installed, TensorRT fp16, with its cold
#      engine build (first open) and cached open times (`vtde bench model`).
#
#   bash tools/gpu-check.sh [PYTHON]      # PYTHON: one with torch + transformers
#
# Prints everything to stdout; tee it to a file for the record. Exits non-zero when a GPU
# test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${1:-}
work=${VTDE_GPU_CHECK_DIR:-$(mktemp -d)}
status=0
say() { printf '\n== %s\n' "$*"; }

say "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || {
  echo "no NVIDIA GPU or driver (nvidia-smi failed)"; exit 1; }

say "ONNX Runtime GPU build"
lib=$(bash tools/fetch-onnxruntime.sh --gpu) || exit 1
echo "$lib"
bash tools/fetch-onnxruntime.sh >/dev/null || exit 1   # the CPU build, for the CPU side

tensorrt=0
if ldconfig -p 2>/dev/null | grep -q 'libnvinfer.so.10'; then
  tensorrt=1; echo "TensorRT 10 found: TensorRT runs are included"
else
  echo "TensorRT absent (no libnvinfer.so.10 on the loader's path): TensorRT runs skipped"
fi

say "build"
cargo build --release -p vtde-cli || exit 1
vtde=target/release/vtde
"$vtde" info models/demo --provider cuda --onnxruntime "$lib" || status=1

say "GPU tests (tests/gpu.rs)"
VTDE_GPU_TESTS=1 VTDE_GPU_TENSORRT=$tensorrt ORT_DYLIB_PATH="$lib" \
  cargo test --release -p vtde-tests --test gpu -- --nocapture --test-threads 1 || status=1

say "CLIP ViT-B/32-sized package"
if [[ -n $python ]] && "$python" -c 'import torch, transformers' 2>/dev/null; then
  "$python" tools/make_bench_checkpoints.py "$work/ckpt" || status=1
  "$vtde" export "$work/ckpt/clip-b32" "$work/clip-b32" --precision fp16 || status=1
  bench() {
    echo "-- $*"
    "$vtde" bench model "$work/clip-b32" --batch-sizes 1,32,256 --seq-lens 16,77 \
      --rounds 1 --repeats 5 --open-repeats 3 "$@" || status=1
  }
  bench --precisions fp32
  bench --onnxruntime "$lib" --provider cuda --precisions fp32,fp16
  if [[ $tensorrt == 1 ]]; then
    # The first open builds the engines (cold), the later ones load them (cached).
    rm -rf "$work/trt-cache"
    VTDE_CACHE_DIR="$work/trt-cache" bench --onnxruntime "$lib" --provider tensorrt \
      --run-precision fp16 --precisions fp16
  fi
else
  echo "skipped: give a Python with torch and transformers as the first argument"
  echo "(bash tools/reference-env.sh builds one) to measure a ViT-B/32-sized package"
fi

say "done (status $status)"
exit $status
