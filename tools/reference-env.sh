#!/usr/bin/env bash
# Builds the Python reference environment: CPU-usable torch, transformers, onnxruntime,
# onnx and Pillow, pinned. The reference outputs that the tests compare against come
# from here, and so do the Python baselines that benchmarks are compared with. Tests and
# CI do not need it; only the tools in tools/*.py do.
#
#   tools/reference-env.sh                 # prints the environment's path when ready
#   "$(tools/reference-env.sh)/bin/python" tools/make_fixtures.py
#
# Where: $VTDE_REFERENCE_ENV, else <repo>/.cache/reference-env (git-ignored). Idempotent:
# an environment that already imports everything is reused as it is. About 4 GB,
# 3 minutes. Needs python3 with venv and access to PyPI.
# PyPI has no CPU-only torch wheel, and torch's wheel will not import without its CUDA
# libraries, so they are installed too (they are never used on a machine with no GPU).
# Everything but the path goes to stderr, so that "$(tools/reference-env.sh)" is the path.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
env_dir=${VTDE_REFERENCE_ENV:-$repo_root/.cache/reference-env}
py="$env_dir/bin/python"
if [[ -x $py ]] && "$py" -c 'import torch, transformers, onnxruntime, onnx, PIL' 2>/dev/null; then
  echo "$env_dir"; exit 0
fi
mkdir -p "$(dirname "$env_dir")"
python3 -m venv "$env_dir" >&2
pip=("$py" -m pip install -q --disable-pip-version-check)
"${pip[@]}" --no-deps torch==2.15.0 >&2
"${pip[@]}" filelock sympy networkx jinja2 fsspec typing-extensions mpmath markupsafe >&2
"${pip[@]}" "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,cusparse,nvjitlink,nvrtc]==13.2.2" \
  nvidia-cudnn-cu13==9.26.0.51 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 \
  nvidia-nvshmem-cu13==3.7.2 >&2
"${pip[@]}" transformers==5.24.0 tokenizers onnxruntime==1.31.1 onnx==1.23.2 onnxscript \
  pillow numpy safetensors scikit-image >&2
"$py" -c 'import torch, transformers, onnxruntime; torch.ones(2) @ torch.ones(2)' >&2
echo "$env_dir"
