#!/usr/bin/env bash
# Fetches the GPU build of ONNX Runtime (CUDA and TensorRT providers, CUDA 13) and the
# CUDA and cuDNN runtime libraries it needs, all from PyPI, and lays them out so that
# vtde loads them with no LD_LIBRARY_PATH:
#
#   bash tools/fetch-onnxruntime.sh --gpu    # prints the library's path when ready
#
# Where: $VTDE_CACHE_DIR/onnxruntime/1.31.1-gpu/, else <repo>/.cache/onnxruntime/1.31.1-gpu/.
# vtde searches there first when a command asks for `--provider cuda` or `tensorrt`
# (else pass `--onnxruntime` that folder). Every wheel is checked against the sha256
# pinned below. The folder holds libonnxruntime, its provider libraries, the CUDA and
# cuDNN libraries flat beside them, and `vtde-preload.txt`: the CUDA and cuDNN libraries
# in dependency order, which vtde loads (RTLD_GLOBAL) before it starts a GPU provider, so
# that ONNX Runtime's provider libraries find them by name.
#
# Needs: Linux x86_64, an NVIDIA driver for CUDA 13 (`nvidia-smi`), about 1.5 GB of
# downloads. TensorRT is not on this list: install TensorRT 10 for CUDA 13 (its
# libnvinfer.so.10 and libnvonnxparser.so.10 on the loader's path) to use
# `--provider tensorrt`. On Jetson, use JetPack's own onnxruntime instead
# (`vtde --onnxruntime /path/to/libonnxruntime.so`).
set -euo pipefail

version=1.31.1
lib_name="libonnxruntime.so.$version"

die() { echo "fetch-onnxruntime --gpu: $*" >&2; exit 1; }
sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] \
  || die "the pinned GPU wheels are for Linux x86_64; on Jetson use JetPack's onnxruntime (--onnxruntime PATH)"

# Requirement -> "wheel-file-name sha256". The versions are those onnxruntime-gpu 1.31.1
# asks for (its `cuda` and `cudnn` extras: nvidia-cuda-nvrtc~=13.0,
# nvidia-cuda-runtime~=13.0, nvidia-cufft~=12.0, nvidia-curand~=10.0,
# nvidia-cudnn-cu13~=9.0, which needs nvidia-cublas), pinned as fetched on 2026-12-01.
wheels=(
  "onnxruntime-gpu==1.31.1 onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6"
  "nvidia-cuda-runtime==13.5.37 nvidia_cuda_runtime-13.5.37-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl df2b79a8852f10d1fef8c848489c49eebb5754051bf870202a862831412b179d"
  "nvidia-cublas==13.10.0.20 nvidia_cublas-13.10.0.20-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl dcc6d63884c53d07e267ce7e6feac17b2538cebaafec5db865736c3e28e4dc84"
  "nvidia-curand==10.4.5.25 nvidia_curand-10.4.5.25-py3-none-manylinux_2_27_x86_64.whl 22bb226a857e5888fe6b54ae465fc4371296bcff13a35f79e19691bcf454f529"
  "nvidia-cufft==12.5.0.14 nvidia_cufft-12.5.0.14-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl b8be26837a5abad2b5b74f3e92dd29f622a42934b355be0961a48712cbba23ad"
  "nvidia-cuda-nvrtc==13.5.37 nvidia_cuda_nvrtc-13.5.37-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl 86b4d68058807988b7d9af5b44917a0601e9c337f35ccd657bfb3c759ff8d8bc"
  "nvidia-cudnn-cu13==9.28.1.4 nvidia_cudnn_cu13-9.28.1.4-py3-none-manylinux_2_27_x86_64.whl a54f205b1db1f2895d99f398754db1369816f0569dd459731f925635cf7b65ec"
)

# Loaded in this order before a GPU provider starts (each after what it needs).
preload=(
  libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libcurand.so.10 libcufft.so.12
  libnvrtc-builtins.so.13.5 libnvrtc.so.13
  libcudnn_graph.so.9 libcudnn_ops.so.9 libcudnn_cnn.so.9 libcudnn_adv.so.9
  libcudnn_heuristic.so.9 libcudnn_engines_precompiled.so.9
  libcudnn_engines_runtime_compiled.so.9 libcudnn_engines_tensor_ir.so.9
  libcudnn_ext.so.9 libcudnn.so.9
)

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${VTDE_CACHE_DIR:-$repo_root/.cache}
dest="$cache_root/onnxruntime/$version-gpu"
stamp="$dest/.complete"
expected_stamp=$(printf '%s\n' "${wheels[@]}" | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$expected_stamp" && -f $dest/$lib_name ]]; then
  echo "$dest/$lib_name"; exit 0
fi

mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$(dirname "$dest")/.fetch-gpu.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/wheels" "$tmp/lib"

for entry in "${wheels[@]}"; do
  read -r requirement file sha <<<"$entry"
  echo "fetch-onnxruntime --gpu: downloading $requirement from PyPI" >&2
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
    --python-version 3.11 --implementation cp --abi cp311 \
    --dest "$tmp/wheels" "$requirement" >&2 || die "pip download of $requirement failed"
  [[ -f $tmp/wheels/$file ]] || die "pip did not return $file for $requirement"
  actual=$(sha256 "$tmp/wheels/$file")
  [[ $actual == "$sha" ]] || die "sha256 mismatch for $file: expected $sha, got $actual"
done

# Every shared library of the wheels, flat in one folder (the CUDA libraries find each
# other through their $ORIGIN run paths).
python3 - "$tmp/wheels" "$tmp/lib" <<'PY' || die "could not extract the libraries"
import os, shutil, sys, zipfile
wheels, out = sys.argv[1:3]
for name in sorted(os.listdir(wheels)):
    with zipfile.ZipFile(os.path.join(wheels, name)) as z:
        for member in z.namelist():
            base = os.path.basename(member)
            if ".so" not in base or base.endswith(".py") or "pybind11" in base:
                continue
            with z.open(member) as src, open(os.path.join(out, base), "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(os.path.join(out, base), 0o755)
PY
for name in "$lib_name" libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so \
  libonnxruntime_providers_tensorrt.so "${preload[@]}"; do
  [[ -f $tmp/lib/$name ]] || die "$name is missing from the wheels"
done
printf '%s\n' "${preload[@]}" >"$tmp/lib/vtde-preload.txt"
ln -sfn "$lib_name" "$tmp/lib/libonnxruntime.so"
printf '%s\n' "$expected_stamp" >"$tmp/lib/.complete"

rm -rf "$dest"
mv "$tmp/lib" "$dest"
echo "fetch-onnxruntime --gpu: ready; vtde finds it for --provider cuda|tensorrt (else pass --onnxruntime $dest)" >&2
echo "$dest/$lib_name"
